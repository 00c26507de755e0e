import { createCipheriv } from 'node:crypto';
import type { FrameReader } from './ws-frames.js';

/**
 * The opening of an RFB (VNC) connection, spoken by Sortie on both sides of the relay:
 * to the session's VNC server it proves the session's password; to the browser it offers
 * "no authentication" (the browser already proved who it is to Sortie). Both sides then
 * stand just before ClientInit, and from there the relay pipes bytes untouched.
 * RFB 3.8: https://github.com/rfbproto/rfbproto/blob/master/rfbproto.rst
 */

const VERSION = Buffer.from('RFB 003.008\n', 'latin1');
const SECURITY_NONE = 1;
const SECURITY_VNC = 2;

export class RfbHandshakeError extends Error {}

type Send = (payload: Buffer) => void;

/** Authenticates to the VNC server with `password`; resolves when the server accepted. */
export async function authenticateToServer(read: FrameReader, send: Send, password: string | undefined): Promise<void> {
  const version = (await read.read(12)).toString('latin1');
  if (!/^RFB 003\.00[78]\n$/.test(version)) throw new RfbHandshakeError(`the VNC server speaks ${JSON.stringify(version)}, not RFB 3.7/3.8`);
  const v38 = version.endsWith('8\n');
  send(Buffer.from(version, 'latin1'));
  const count = (await read.read(1))[0]!;
  if (count === 0) throw new RfbHandshakeError(`the VNC server refused the connection: ${await readReason(read)}`);
  const offered = [...(await read.read(count))];
  if (password !== undefined && offered.includes(SECURITY_VNC)) {
    send(Buffer.from([SECURITY_VNC]));
    const challenge = await read.read(16);
    send(vncAuthResponse(challenge, password));
  } else if (offered.includes(SECURITY_NONE)) {
    send(Buffer.from([SECURITY_NONE]));
    if (!v38) return; // RFB 3.7 sends no result for "None"
  } else {
    throw new RfbHandshakeError(`the VNC server offers no security type Sortie can answer (offered ${offered.join(', ')})`);
  }
  const result = (await read.read(4)).readUInt32BE(0);
  if (result !== 0) throw new RfbHandshakeError(`the VNC server refused Sortie's password${v38 ? `: ${await readReason(read)}` : ''}`);
}

/** Leads the browser up to ClientInit with security "None"; resolves with the SecurityResult still to send. */
export async function greetBrowser(read: FrameReader, send: Send): Promise<Buffer | undefined> {
  send(VERSION);
  const version = (await read.read(12)).toString('latin1');
  if (!/^RFB 003\.00[78]\n$/.test(version)) throw new RfbHandshakeError(`the viewer speaks ${JSON.stringify(version)}, not RFB 3.7/3.8`);
  send(Buffer.from([1, SECURITY_NONE]));
  const chosen = (await read.read(1))[0];
  if (chosen !== SECURITY_NONE) throw new RfbHandshakeError(`the viewer chose security type ${chosen}`);
  // 3.8 confirms "None" with a SecurityResult; the caller sends it once the pipe is in place.
  return version.endsWith('8\n') ? Buffer.alloc(4) : undefined;
}

/** Most bytes of a desktop name a ServerInit may carry; Sortie's desktops send a few dozen. */
const MAX_DESKTOP_NAME = 1024;

/**
 * Sends the VNC server ClientInit ("shared": other viewers stay) and answers its ServerInit,
 * whole: for a connection opened ahead, whose viewer's ClientInit the relay then answers itself.
 */
export async function initialiseServer(read: FrameReader, send: Send): Promise<Buffer> {
  send(Buffer.from([1]));
  const head = await read.read(24);
  const nameLength = head.readUInt32BE(20);
  if (nameLength > MAX_DESKTOP_NAME) throw new RfbHandshakeError(`the VNC server sent a ${nameLength}-byte desktop name, more than the ${MAX_DESKTOP_NAME} allowed`);
  return Buffer.concat([head, await read.read(nameLength)]);
}

/** Reads the viewer's ClientInit. Its "shared" flag is not asked: every stream is shared (see initialiseServer). */
export async function readClientInit(read: FrameReader): Promise<void> {
  await read.read(1);
}

async function readReason(read: FrameReader): Promise<string> {
  const length = (await read.read(4)).readUInt32BE(0);
  return (await read.read(Math.min(length, 1024))).toString('utf8');
}

/**
 * VNC authentication: DES-encrypt the challenge with the password (8 bytes, zero padded,
 * each byte's bits reversed). OpenSSL 3 keeps single DES in its legacy provider, but
 * two-key triple DES with both keys equal is the same cipher.
 */
export function vncAuthResponse(challenge: Buffer, password: string): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) key[i] = reverseBits(key[i]!);
  const cipher = createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(challenge), cipher.final()]);
}

function reverseBits(byte: number): number {
  let out = 0;
  for (let i = 0; i < 8; i++) out |= ((byte >> i) & 1) << (7 - i);
  return out;
}
