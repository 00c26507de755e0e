/**
 * Errors named by what went wrong, not by HTTP status. Services throw these;
 * http/errors.ts is the one place that maps them to a status code and JSON shape.
 */
export class SortieError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The caller sent something we cannot act on (bad JSON, wrong field, unsupported app). */
export class InputError extends SortieError {}

/** The thing asked for does not exist (or the caller may not know that it does). */
export class NotFoundError extends SortieError {}

/** The request is valid but clashes with the current state. */
export class ConflictError extends SortieError {}

/** A setting or file Sortie was started with is wrong; start-up stops with this message. */
export class ConfigError extends SortieError {}

/** No valid sign-in: the caller should refresh its token or sign in again. */
export class UnauthorizedError extends SortieError {}

/** Signed in but not allowed. Only for admin routes: others' sessions answer NotFoundError so ids cannot be probed. */
export class ForbiddenError extends SortieError {}

/** The request's body is larger than a limit allows (HTTP 413). */
export class PayloadTooLargeError extends SortieError {}

/** The caller is over a limit; `retryAfterSeconds` says when trying again may succeed (HTTP 429 with Retry-After). */
export class TooManyRequestsError extends SortieError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
