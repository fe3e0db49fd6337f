// Errors a service may throw; the HTTP layer turns each into an RFC 9457 problem.

export interface FieldError {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;
  /** RFC 9457 extension members, added to the problem as they are. */
  readonly extensions?: Record<string, unknown>;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      extensions?: Record<string, unknown>;
    } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = extra.errors;
    this.headers = extra.headers;
    this.extensions = extra.extensions;
  }
}

export const badRequest = (message: string, errors?: FieldError[]) =>
  new AppError(400, 'bad_request', message, { errors });
export const validationFailed = (field: string, message: string) =>
  new AppError(422, 'validation_failed', `${field}: ${message}`, { errors: [{ field, message }] });
export const unauthorized = (message = 'Authentication required') =>
  new AppError(401, 'unauthorized', message);
export const forbidden = (message = 'You may not do this') => new AppError(403, 'forbidden', message);
export const notFound = (what = 'Resource') => new AppError(404, 'not_found', `${what} not found`);
export const conflict = (message: string) => new AppError(409, 'conflict', message);
export const tooManyRequests = (retryAfterSeconds: number) =>
  new AppError(429, 'rate_limited', `Too many requests; retry in ${retryAfterSeconds} s`, {
    headers: { 'retry-after': String(retryAfterSeconds) },
  });

/** An organisation's limit (domains, mailboxes) would be passed: names the limit, its value and the usage. */
export const limitReached = (limit: string, value: number, usage: number, message: string) =>
  new AppError(403, 'limit_reached', message, { extensions: { limit, value, usage } });
