/** The one JSON shape every error response has. */
export interface ErrorBody {
  /** Machine-readable: not_found, bad_request, conflict, unauthorized, forbidden, too_many_requests… */
  error: string;
  /** Says what went wrong in words a person can act on. */
  message: string;
}
