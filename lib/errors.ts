/**
 * Stable codes of the errors a user can meet. Each maps to one HTTP status; the
 * list in docs/errors.md is kept in step with this table by a test.
 */
export const ERROR_CODES = {
  FL_INVALID_CONFIG: 500,
  FL_DATA_DIR_LOCKED: 500,
  FL_PORT_IN_USE: 500,
  FL_STORAGE_UNAVAILABLE: 503,
  FL_UNSUPPORTED_SERVER: 500,
  FL_BAD_REQUEST: 400,
  FL_UNDECODABLE_BODY: 400,
  FL_UNSUPPORTED_MEDIA_TYPE: 415,
  FL_UNSUPPORTED_ENCODING: 415,
  FL_BODY_TOO_LARGE: 413,
  FL_INVALID_PARAMETER: 400,
  FL_TRACE_NOT_FOUND: 404,
  FL_NOT_FOUND: 404,
  FL_TRACE_TOO_LARGE: 422,
  FL_REPORT_NOT_FOUND: 404,
  FL_INCIDENT_NOT_FOUND: 404,
  FL_SHUTTING_DOWN: 503,
  FL_UNAUTHORIZED: 401,
  FL_QUERY_LIMIT: 400,
  FL_UI_NOT_BUILT: 503,
  FL_DECOMPRESSED_TOO_LARGE: 413,
  FL_TOO_MANY_SPANS: 413,
  FL_OVERLOADED: 429,
  FL_WAL_FULL: 503,
  FL_WAL_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code, a message that names the value and the fix, and an HTTP status. */
export class FaultlineError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  /** Seconds a sender should wait before retrying, for overload and unavailability errors. */
  readonly retryAfterSeconds?: number;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options);
    this.name = 'FaultlineError';
    this.code = code;
    this.httpStatus = ERROR_CODES[code];
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
