/**
 * Kubernetes resource quantities ("500m", "2", "512Mi", "1.5Gi", "1e3"), parsed the way the
 * API server does, so a mistake in the catalog or the settings is caught when Sortie starts
 * rather than when a pod or a claim is refused in front of a user.
 */
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|(n|u|m|k|M|G|T|P|E)|([eE][+-]?\d+))?$/;

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** The quantity's value in base units (cores or bytes), or undefined when it is not a quantity. */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY.exec(text);
  if (!match) return undefined;
  const [, number, binary, decimal, exponent] = match;
  const base = Number(number);
  if (binary) return base * BINARY[binary]!;
  if (decimal) return base * DECIMAL[decimal]!;
  if (exponent) return base * 10 ** Number(exponent.slice(1));
  return base;
}
