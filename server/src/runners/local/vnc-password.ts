import { vncAuthResponse } from '../../stream/rfb-handshake.js';

/**
 * The file TigerVNC's Xvnc reads its VNC password from (`-PasswordFile`, what `vncpasswd -f`
 * writes): the password, 8 bytes zero padded, DES-encrypted under a key fixed in every VNC
 * implementation. That is obfuscation, not protection: the file is as secret as the
 * password, which is why the runner never leaves it on disk (see xvncRecipe).
 */
const OBFUSCATION_KEY = Buffer.from([23, 82, 107, 6, 35, 78, 88, 7]).toString('latin1');

export function vncPasswordFile(password: string): Buffer {
  const block = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(block, 0, 0, 8);
  // The same DES as the VNC challenge, with the fixed key as the "password".
  return vncAuthResponse(block, OBFUSCATION_KEY);
}
