/**
 * Where to go after signing in. Kept in sessionStorage (a hash route, nothing secret)
 * so it survives the full-page round trip through a single sign-on provider.
 */
const KEY = 'sortie.returnTo';
let memory: string | null = null;

function valid(hash: string | null): hash is string {
  return Boolean(hash && hash.startsWith('#/') && !/^#\/signin(?:[/?]|$)/.test(hash));
}

export function rememberReturn(hash: string): void {
  if (!valid(hash)) return;
  memory = hash;
  try {
    sessionStorage.setItem(KEY, hash);
  } catch {
    // Storage disabled: the in-memory copy covers the password form at least.
  }
}

export function peekReturn(): string | null {
  let stored: string | null = null;
  try {
    stored = sessionStorage.getItem(KEY);
  } catch {
    stored = null;
  }
  const hash = stored ?? memory;
  return valid(hash) ? hash : null;
}

export function takeReturn(): string | null {
  const hash = peekReturn();
  forgetReturn();
  return hash;
}

export function forgetReturn(): void {
  memory = null;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing to clean up
  }
}
