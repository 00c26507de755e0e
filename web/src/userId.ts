const STORAGE_KEY = 'sortie.userId';

/**
 * Until sign-in exists, a random id kept in this browser stands in for the person,
 * so the sessions page lists only what they launched here.
 */
export function getUserId(): string {
  try {
    const existing = localStorage.getItem(STORAGE_KEY);
    if (existing) return existing;
    const id = `user-${randomSuffix()}`;
    localStorage.setItem(STORAGE_KEY, id);
    return id;
  } catch {
    // Storage can be disabled (private mode, policies); keep one id for this page's lifetime.
    fallbackId ??= `user-${randomSuffix()}`;
    return fallbackId;
  }
}

let fallbackId: string | undefined;

function randomSuffix(): string {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
