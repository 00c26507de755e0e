import { compileEntries } from './compile-entries.js';

/**
 * Compiles the server and the bench's Sortie children to plain JavaScript with the project's
 * own tsc, as `npm run build:server` does for production, into `outDir` (a scratch dir,
 * never the checkout). Running the child from that output means Sortie runs under plain
 * `node`, as deployed: under tsx the same server used about twice the CPU per GB relayed
 * (see bench/README.md). `root` holds server/src and bench/lib (this checkout, or a
 * revision exported next to a copy of bench/lib).
 */
export async function buildSortie(root: string, outDir: string): Promise<{ sortie: string; relayOnly: string }> {
  const { entries } = await compileEntries(['bench/lib/sortie-child.ts', 'bench/lib/relay-only-child.ts'], outDir, root);
  return { sortie: entries[0]!, relayOnly: entries[1]! };
}
