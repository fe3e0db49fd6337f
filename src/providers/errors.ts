// What can go wrong talking to an outside provider, in terms a caller can act on. Routes turn these
// into problem+json answers (auth and zone problems 422, rate limits 429 with Retry-After,
// an unreachable or failing provider 502); per-record failures are recorded, not thrown.

import { AppError } from '../core/errors.ts';

export type ProviderErrorCode =
  /** The provider refused the credentials (bad token, API access not enabled, IP not allowed). */
  | 'provider_auth_failed'
  /** The provider asked us to slow down. */
  | 'provider_rate_limited'
  /** The DNS provider account has no zone that contains the domain. */
  | 'zone_not_found'
  /** The provider refused the request itself (bad input, domain unavailable, insufficient funds...). */
  | 'provider_rejected'
  /** The provider could not be reached or answered with a server error. */
  | 'provider_unavailable';

export class ProviderError extends Error {
  readonly code: ProviderErrorCode;
  /** Seconds to wait, when the provider said so (rate limits). */
  readonly retryAfterSeconds: number | null;

  constructor(code: ProviderErrorCode, message: string, retryAfterSeconds: number | null = null) {
    super(message);
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

const STATUS: Record<ProviderErrorCode, number> = {
  provider_auth_failed: 422,
  zone_not_found: 422,
  provider_rejected: 422,
  provider_rate_limited: 429,
  // The provider, not the request, failed: a gateway error is the honest answer.
  provider_unavailable: 502,
};

/** The problem+json answer for a provider failure. */
export function providerProblem(error: ProviderError): AppError {
  const headers: Record<string, string> =
    error.retryAfterSeconds !== null ? { 'retry-after': String(error.retryAfterSeconds) } : {};
  return new AppError(STATUS[error.code], error.code, error.message, { headers });
}
