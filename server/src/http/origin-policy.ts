/**
 * Which browser origins may call the API and open streams. Browsers always send Origin on
 * WebSocket upgrades and cross-site writes, and a page elsewhere must not ride on the
 * user's cookies, so: same origin as the request's Host, SORTIE_PUBLIC_URL, or one of
 * SORTIE_ALLOWED_ORIGINS. Requests without Origin come from non-browser clients.
 */
export class OriginPolicy {
  private readonly allowed: Set<string>;

  constructor(publicUrl: string | undefined, extra: string[]) {
    this.allowed = new Set([...(publicUrl ? [new URL(publicUrl).origin] : []), ...extra.map((o) => new URL(o).origin)]);
  }

  allows(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false;
    }
    return parsed.host === host || this.allowed.has(parsed.origin);
  }
}
