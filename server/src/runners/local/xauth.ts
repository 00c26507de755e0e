import { randomBytes } from 'node:crypto';

/**
 * An X display is open to whoever can reach its socket unless the server is started with
 * `-auth`: then a client must present a cookie from that file. Each session gets its own
 * random cookie, held only by Sortie (for Xvnc) and by the session (a copy in
 * its home), so no other local user, and no other session, can open its display.
 */
export const COOKIE_NAME = 'MIT-MAGIC-COOKIE-1';
const COOKIE_BYTES = 16;
/** Matches any address, so one entry serves the Unix socket and the abstract socket alike. */
const FAMILY_WILD = 0xffff;

export function newCookie(): Buffer {
  return randomBytes(COOKIE_BYTES);
}

function counted(data: Buffer): Buffer {
  if (data.length > 0xffff) throw new Error('Xauthority field too long');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(data.length);
  return Buffer.concat([length, data]);
}

/**
 * One entry in the Xauthority file format Xlib and X servers read: family, address, display
 * number, auth name, auth data, each but the family a big-endian length and its bytes.
 */
export function xauthorityEntry(display: number, cookie: Buffer): Buffer {
  if (!Number.isInteger(display) || display < 0) throw new Error(`Not a display number: ${display}`);
  const family = Buffer.alloc(2);
  family.writeUInt16BE(FAMILY_WILD);
  return Buffer.concat([
    family,
    counted(Buffer.alloc(0)),
    counted(Buffer.from(String(display), 'ascii')),
    counted(Buffer.from(COOKIE_NAME, 'ascii')),
    counted(cookie),
  ]);
}
