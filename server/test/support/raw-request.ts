import http from 'node:http';

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body as JSON; empty for a download or any body that is not JSON. */
  json: { error?: string; message?: string; [key: string]: unknown };
}

export interface RawRequestOptions {
  /** Sent as `Authorization: Bearer …`. */
  token?: string;
  body?: Buffer;
  /** Send the body in several chunks without Content-Length, so the server counts a body whose size it was not told. */
  chunked?: boolean;
  headers?: Record<string, string>;
}

/**
 * A request with a binary body, sent with Content-Length or (chunked) without one, on a
 * connection of its own. An answer that arrives before the body is all sent is still read:
 * Sortie may refuse an upload early and close the connection.
 */
export function rawRequest(base: string, method: string, urlPath: string, options: RawRequestOptions = {}): Promise<RawAnswer> {
  const url = new URL(base);
  const headers: Record<string, string> = { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers };
  if (options.body && !options.chunked) headers['content-length'] = String(options.body.length);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: url.hostname, port: url.port, path: urlPath, method, headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let json = {};
        try {
          json = JSON.parse(body.toString()) as RawAnswer['json'];
        } catch {
          // a download
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (!options.body) return void req.end();
    if (!options.chunked) return void req.end(options.body);
    const step = 64 * 1024;
    for (let at = 0; at < options.body.length; at += step) req.write(options.body.subarray(at, at + step));
    req.end();
  });
}
