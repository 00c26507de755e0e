import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { MetricsToken } from '../metrics/metrics.js';
import type { Authenticator } from './auth-hook.js';
import type { HostPolicy } from './host-policy.js';
import type { OriginPolicy } from './origin-policy.js';

/**
 * Where a request comes from and who sends it, decided the same way for HTTP routes
 * (access-gate.ts) and WebSocket streams (stream/stream-access.ts):
 *  - with sign-in off, only Host names of this server are answered (DNS rebinding);
 *  - a browser on a foreign Origin may not change anything nor open a stream;
 *  - the principal comes from the access token (cookie or bearer).
 * Throws ForbiddenError or UnauthorizedError with a message a person can act on.
 */
export class RequestGate {
  constructor(
    private readonly o: {
      authn: Authenticator;
      origins: OriginPolicy;
      /** Present only when sign-in is off. */
      hosts: HostPolicy | undefined;
      /** SORTIE_METRICS_TOKEN; without it no request passes as a metrics scraper. */
      metricsToken?: MetricsToken | undefined;
    },
  ) {}

  /** `acts`: the request changes something or opens a stream, so its Origin matters. */
  checkSource(headers: IncomingHttpHeaders, acts: boolean): void {
    if (this.o.hosts && !this.o.hosts.allows(headers.host)) throw new ForbiddenError(this.o.hosts.refusal(headers.host));
    if (acts && !this.o.origins.allows(headers.origin, headers.host)) {
      throw new ForbiddenError(`Requests from ${headers.origin} are not allowed; add it to SORTIE_ALLOWED_ORIGINS if it should be`);
    }
  }

  /** A Prometheus scraper: `Authorization: Bearer <SORTIE_METRICS_TOKEN>`, compared in constant time. */
  checkMetricsToken(headers: IncomingHttpHeaders): void {
    if (!this.o.metricsToken?.admits(headers)) throw new UnauthorizedError('Scrape /metrics with the header Authorization: Bearer <SORTIE_METRICS_TOKEN>');
  }

  principal(headers: IncomingHttpHeaders): Promise<Principal> {
    return this.o.authn.principalOf(headers);
  }
}
