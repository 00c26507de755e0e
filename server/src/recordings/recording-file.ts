import { open } from 'node:fs/promises';
import { KIND_SEGMENT, KIND_SERVER, MAGIC, MAX_RECORD_PAYLOAD, RECORD_HEADER, hasMagic } from './recording-format.js';

/** How much of a recording file is whole, and the time of its last record. */
export interface FileExtent {
  /** Bytes up to the end of the last complete record (the magic alone is 8). */
  validLength: number;
  /** `at` of the last complete record, which is how long the recording runs. */
  lastAt: number;
  /** The file's size on disk; more than validLength when its tail was cut short. */
  size: number;
}

const BLOCK = 1024 * 1024;

/**
 * Measures a recording file by walking its record headers, a block at a time (payloads
 * are skipped, not read). A file without the magic has nothing valid in it.
 */
export async function measure(file: string): Promise<FileExtent> {
  const fh = await open(file, 'r');
  try {
    return await walk(fh, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

/**
 * Gets a recording file ready to take more records: created (0600) with its magic if new,
 * else its broken tail, if any, cut off so the next record follows the last whole one.
 */
export async function prepareForAppend(file: string): Promise<FileExtent> {
  const fh = await open(file, 'a+', 0o600);
  try {
    const size = (await fh.stat()).size;
    if (size === 0) {
      await fh.write(MAGIC);
      return { validLength: MAGIC.length, lastAt: 0, size: MAGIC.length };
    }
    const extent = await walk(fh, size);
    if (extent.validLength === 0) {
      // Not a recording (or its magic is damaged): nothing in it can be played, so start over.
      await fh.truncate(0);
      await fh.write(MAGIC);
      return { validLength: MAGIC.length, lastAt: 0, size: MAGIC.length };
    }
    if (extent.validLength < size) await fh.truncate(extent.validLength);
    return { ...extent, size: extent.validLength };
  } finally {
    await fh.close();
  }
}

async function walk(fh: Awaited<ReturnType<typeof open>>, size: number): Promise<FileExtent> {
  const head = Buffer.alloc(MAGIC.length);
  await fh.read(head, 0, head.length, 0);
  if (!hasMagic(head)) return { validLength: 0, lastAt: 0, size };
  const block = Buffer.alloc(BLOCK);
  let pos = MAGIC.length;
  let lastAt = 0;
  for (;;) {
    if (pos + RECORD_HEADER > size) break;
    const { bytesRead } = await fh.read(block, 0, BLOCK, pos);
    let off = 0;
    let broken = false;
    while (off + RECORD_HEADER <= bytesRead) {
      const kind = block[off]!;
      const length = block.readUInt32BE(off + 5);
      if ((kind !== KIND_SEGMENT && kind !== KIND_SERVER) || length > MAX_RECORD_PAYLOAD || pos + off + RECORD_HEADER + length > size) {
        broken = true;
        break;
      }
      lastAt = block.readUInt32BE(off + 1);
      off += RECORD_HEADER + length;
    }
    pos += off;
    if (broken || off === 0) break;
  }
  return { validLength: pos, lastAt, size };
}
