// What the accounts module throws that its callers (routes, the sync, sending) act on.
import { AppError } from '../../core/errors.ts';

/**
 * The provider refused the account's login for good (its OAuth grant was revoked or expired, or needs
 * the user again): the account is in `auth_failed`, and `account.auth_failed` was emitted when it got
 * there. Retrying cannot help; authorising it again (POST /v1/accounts/{id}/oauth/start) does.
 */
export class AccountAuthError extends AppError {
  readonly accountId: string;

  constructor(accountId: string, message: string) {
    super(409, 'account_auth_failed', message);
    this.name = 'AccountAuthError';
    this.accountId = accountId;
  }
}

/**
 * An OAuth callback refused after its state was recognised: it carries the start's `redirect_to`, where
 * the browser is sent with the error rather than left on a JSON page.
 */
export class OAuthCallbackError extends AppError {
  readonly redirectTo: string | null;

  constructor(problem: AppError, redirectTo: string | null) {
    super(problem.status, problem.code, problem.message, {
      errors: problem.errors,
      headers: problem.headers,
      extensions: problem.extensions,
    });
    this.name = 'OAuthCallbackError';
    this.redirectTo = redirectTo;
  }
}
