import type { z } from 'zod';
import { InputError } from '../errors.js';

/** Validates a body or query; the first problem becomes a 400 that names the field. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value ?? undefined);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? `field "${issue.path.join('.')}" ` : '';
  throw new InputError(`${field}${issue.message}`);
}
