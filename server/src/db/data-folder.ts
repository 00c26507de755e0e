import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The database holds the token-signing key, every session's VNC password, password hashes
 * and sign-in ids, so its folder is Sortie's alone (0700) and its files are 0600.
 *
 * A folder that other users may write to is refused rather than repaired: anyone there
 * could swap the database for their own (and with it the admin account) or plant a
 * symlink where SQLite will write. A folder that is merely readable by others is
 * tightened when it is ours, since what matters is what is inside.
 */
export function prepareDataFolder(dbFile: string): void {
  const dir = path.dirname(dbFile);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const folder = statSync(dir);
  if (folder.mode & 0o002) {
    throw new Error(
      `the data folder ${dir} is writable by every user (mode ${octal(folder.mode)}), so anyone could replace Sortie's database; ` +
        `run "chmod 700 ${dir}" or point SORTIE_DB_PATH at a folder only Sortie can write`,
    );
  }
  if (folder.mode & 0o077 && folder.uid === process.getuid?.()) chmodSync(dir, 0o700);
  // SQLite gives its -wal and -shm files the database file's mode, so creating the
  // database 0600 before SQLite opens it covers all three; existing files are tightened.
  if (!existsSync(dbFile)) closeSync(openSync(dbFile, 'a', 0o600));
  for (const file of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) {
    if (existsSync(file) && statSync(file).mode & 0o077) chmodSync(file, 0o600);
  }
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
