// How an OAuth call failed, in terms the accounts code acts on: ask the user to connect the account
// again, fix the client configuration, retry later, or report a provider that answered nonsense.
// An OAuthError is a ProviderError, so routes answer it like any other provider failure.
import { ProviderError, type ProviderErrorCode } from '../errors.ts';

export type OAuthFailure =
  /** The grant is revoked, expired or needs the user again (MFA, consent): authorise the account again. */
  | 'invalid_grant'
  /** The provider refused the client itself: client ID, secret or redirect URI are wrong. */
  | 'invalid_client'
  /** The provider refused the request for another reason (scope, parameters). */
  | 'rejected'
  /** The provider asked us to slow down. */
  | 'rate_limited'
  /** The provider could not be reached, timed out or failed (5xx, server_error, temporarily_unavailable). */
  | 'unavailable'
  /** The provider answered, but not with what the protocol promises. */
  | 'malformed';

const PROVIDER_CODES: Record<OAuthFailure, ProviderErrorCode> = {
  invalid_grant: 'provider_auth_failed',
  invalid_client: 'provider_auth_failed',
  rejected: 'provider_rejected',
  rate_limited: 'provider_rate_limited',
  unavailable: 'provider_unavailable',
  malformed: 'provider_unavailable',
};

export class OAuthError extends ProviderError {
  readonly reason: OAuthFailure;
  /** The provider's own error code (`invalid_grant`, `interaction_required`...), when it sent one. */
  readonly oauthError: string | null;
  /** Whether the same request may succeed later without anyone changing anything. */
  readonly retryable: boolean;

  constructor(
    reason: OAuthFailure,
    message: string,
    extra: { oauthError?: string | null; retryAfterSeconds?: number | null } = {},
  ) {
    super(PROVIDER_CODES[reason], message, extra.retryAfterSeconds ?? null);
    this.name = 'OAuthError';
    this.reason = reason;
    this.oauthError = extra.oauthError ?? null;
    this.retryable = reason === 'unavailable' || reason === 'rate_limited';
  }
}
