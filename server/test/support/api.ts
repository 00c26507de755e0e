import http from 'node:http';
import type { Session, SessionStatus } from '../../src/sessions/session.js';
import { waitFor } from './wait.js';

export interface Reply<T = unknown> {
  status: number;
  /** The body parsed as JSON, or its text when it is not JSON. */
  body: T;
  text: string;
  headers: http.IncomingHttpHeaders;
}

/** The cookies a reply sets (Set-Cookie headers), none when it sets none. */
export function setCookies(reply: Pick<Reply, 'headers'>): string[] {
  return reply.headers['set-cookie'] ?? [];
}

export type ErrorBody = { error: string; message: string };
export type Tokens = { access_token: string; refresh_token: string; expires_at: string; user: { id: string; username: string; role: string } };

export interface ApiOptions {
  /** Sent as `Authorization: Bearer …` with every request. */
  token?: string;
  /** The local address requests come from (any 127.x.y.z is this machine's loopback). */
  from?: string;
  headers?: Record<string, string>;
  /** Give up on a request that has not answered within this many ms (default: wait). */
  timeoutMs?: number;
}

/**
 * The one HTTP client of the tests and benchmarks. node:http rather than fetch: the path
 * goes out byte for byte (fetch normalises some spellings an attacker would try), and a
 * request can come from another loopback address. `as(token)` and `from(address)` give a
 * client that signs every request, or sends it from elsewhere.
 */
export class Api {
  constructor(
    readonly base: string,
    private readonly options: ApiOptions = {},
  ) {}

  as(token: string | undefined): Api {
    return new Api(this.base, { ...this.options, token });
  }

  from(address: string): Api {
    return new Api(this.base, { ...this.options, from: address });
  }

  with(headers: Record<string, string>): Api {
    return new Api(this.base, { ...this.options, headers: { ...this.options.headers, ...headers } });
  }

  get token(): string | undefined {
    return this.options.token;
  }

  /** A string body goes as it is (bad JSON, a form); anything else as JSON. */
  request<T = unknown>(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const url = new URL(this.base);
    const all: Record<string, string> = { ...this.options.headers };
    if (this.options.token) all.authorization = `Bearer ${this.options.token}`;
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    if (payload !== undefined) {
      all['content-type'] = 'application/json';
      all['content-length'] = String(Buffer.byteLength(payload));
    }
    Object.assign(all, headers);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: urlPath, method, headers: all, ...(this.options.from ? { localAddress: this.options.from } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // not JSON: callers that care assert on the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T, text, headers: res.headers });
          });
        },
      );
      req.on('error', reject);
      const { timeoutMs } = this.options;
      if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
      req.end(payload);
    });
  }

  /** POST /api/auth/login, answered as it is. */
  signIn(username: string, password: string): Promise<Reply<Tokens & ErrorBody>> {
    return this.request<Tokens & ErrorBody>('POST', '/api/auth/login', { username, password });
  }

  /** Signs in and answers with a client acting as that user; throws when refused. */
  async signedIn(username: string, password: string): Promise<Api & { tokens: Tokens }> {
    const res = await this.signIn(username, password);
    if (res.status !== 200) throw new Error(`sign-in as ${username}: ${res.status} ${res.text}`);
    return Object.assign(this.as(res.body.access_token), { tokens: res.body });
  }

  /** An admin creates an account (this client must be signed in as one); answers with its id. */
  async createUser(username: string, password: string, role: 'user' | 'admin' = 'user'): Promise<string> {
    const res = await this.request<{ id: string }>('POST', '/api/admin/users', { username, password, role });
    if (res.status !== 201) throw new Error(`create user ${username}: ${res.status} ${res.text}`);
    return res.body.id;
  }

  async launch(appId: string, userId?: string): Promise<Session> {
    const res = await this.request<Session>('POST', '/api/sessions', { app_id: appId, ...(userId ? { user_id: userId } : {}) });
    if (res.status !== 201) throw new Error(`launch ${appId}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async session(id: string): Promise<Session> {
    const res = await this.request<Session>('GET', `/api/sessions/${id}`);
    if (res.status !== 200) throw new Error(`get ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async end(id: string): Promise<Reply<Session>> {
    return this.request<Session>('DELETE', `/api/sessions/${id}`);
  }

  /**
   * Polls until the session has one of `wanted`. A final status that was not wanted fails
   * at once (as does leaving `queued`/`creating` for anything unwanted but `running`).
   */
  async waitFor(id: string, wanted: SessionStatus | SessionStatus[], ms = 30_000): Promise<Session> {
    const statuses = Array.isArray(wanted) ? wanted : [wanted];
    let last: Session | undefined;
    try {
      return await waitFor(
        async () => {
          last = await this.session(id);
          if (statuses.includes(last.status)) return last;
          if (last.status === 'failed' || last.status === 'terminated' || (last.status === 'running' && !statuses.includes('terminated'))) {
            throw new Error(`session ${id} is ${last.status} (${last.reason ?? 'no reason'}), wanted ${statuses.join(' or ')}`);
          }
          return undefined;
        },
        { what: `session ${id} to be ${statuses.join(' or ')}`, timeoutMs: ms, intervalMs: 20 },
      );
    } catch (err) {
      if (last && (err as Error).message.startsWith('timed out')) throw new Error(`session ${id} still ${last.status} after ${ms} ms, wanted ${statuses.join(' or ')}`);
      throw err;
    }
  }
}
