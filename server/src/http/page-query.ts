import { z } from 'zod';
import { CURSOR_MAX_LENGTH, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from '../contract/pages.js';
import { InputError } from '../errors.js';

const LIMIT_MESSAGE = `must be a whole number from 1 to ${PAGE_LIMIT_MAX} (leave it out for ${PAGE_LIMIT_DEFAULT})`;
const CURSOR_MESSAGE =
  'is not a cursor this list handed out: pass the previous answer\'s "next_cursor" unchanged, or leave "cursor" out for the first page';

/** The query fields every paged list takes; spread into the list's own query schema. */
export const pageFields = {
  limit: z
    .string({ error: LIMIT_MESSAGE })
    .regex(/^\d{1,4}$/, LIMIT_MESSAGE)
    .transform(Number)
    .refine((n) => n >= 1 && n <= PAGE_LIMIT_MAX, LIMIT_MESSAGE)
    .default(PAGE_LIMIT_DEFAULT),
  cursor: z.string({ error: CURSOR_MESSAGE }).min(1, CURSOR_MESSAGE).max(CURSOR_MAX_LENGTH, CURSOR_MESSAGE).optional(),
};

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * A list's cursor: the sort key of the last item on a page, as base64url JSON led by the
 * list's name. Opaque to clients; not secret (it only says where a page ends, and every
 * query still applies the caller's own filter), but checked in full on the way back in,
 * so a cursor that was edited, cut short or taken from another list is a 400, never a query.
 */
export class CursorCodec<Key extends readonly unknown[]> {
  constructor(
    private readonly list: string,
    private readonly key: z.ZodType<Key>,
  ) {}

  encode(key: Key): string {
    return Buffer.from(JSON.stringify([this.list, ...key])).toString('base64url');
  }

  /** The key a cursor holds; InputError (400) for anything this codec did not make. */
  decode(cursor: string): Key {
    const bad = new InputError(`field "cursor" ${CURSOR_MESSAGE}`);
    // Node's decoder skips characters it does not know: only a canonical cursor is one we made.
    if (!BASE64URL.test(cursor)) throw bad;
    const bytes = Buffer.from(cursor, 'base64url');
    if (bytes.toString('base64url') !== cursor) throw bad;
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw bad;
    }
    if (!Array.isArray(json) || json[0] !== this.list) throw bad;
    const result = this.key.safeParse(json.slice(1));
    if (!result.success) throw bad;
    return result.data;
  }
}
