// Sign-in with Google or Microsoft 365 for external accounts: the authorization code flow with PKCE
// from its start to the provider's callback, which tests the servers with the new token (SASL XOAUTH2)
// before it connects the account; and the account's access token afterwards, refreshed when it is about
// to expire, once across every process however many ask at the same time.
import { createHash } from 'node:crypto';
import type { Config } from '../../config.ts';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { AppError, badRequest, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { ProviderError, providerProblem } from '../../providers/errors.ts';
import { OAuthError } from '../../providers/oauth/errors.ts';
import { DEFAULT_SCOPES, OAUTH_PROVIDERS } from '../../providers/oauth/providers.ts';
import type { ExchangedTokens, OAuthClientConfig, TokenSet } from '../../providers/oauth/types.ts';
import type { EventsService } from '../events/service.ts';
import { normaliseEmail } from '../mailboxes/service.ts';
import { type Credentials, type Diagnosis, diagnoseImap, diagnoseSmtp } from './diagnose.ts';
import { AccountAuthError, OAuthCallbackError } from './errors.ts';
import { accountAuthFailed, accountConnected, accountRef, accountUpdated } from './events.ts';
import * as oauthStore from './oauth-store.ts';
import * as store from './store.ts';
import type { MailAccountRow, NewMailAccount, OAuthAccountProvider, StoredServer } from './tables.ts';

/** Long enough to sign in with a second factor; short enough that a leaked link soon stops working. */
const REQUEST_TTL_MS = 10 * 60_000;
/** A token this close to its end is refreshed rather than handed out: an IMAP login may take a while. */
const REFRESH_MARGIN_MS = 2 * 60_000;

export interface AccountOAuthOptions {
  db: Db;
  secrets: Secrets;
  events: EventsService;
  settings: Config['oauth'];
  /** redirect_to may point here, or at an origin in `corsOrigins`. */
  publicUrl: string;
  corsOrigins: string[];
}

export interface OAuthStartInput {
  login_hint?: string | null;
  name?: string | null;
  redirect_to?: string | null;
}

/** The query of the provider's redirect (RFC 6749 §4.1.2); providers add parameters of their own. */
export interface OAuthCallbackInput {
  code?: string;
  state?: string;
  error?: string;
  error_description?: string;
}

export interface OAuthCallbackResult {
  account: MailAccountRow;
  /** False when an existing account was authorised again. */
  created: boolean;
  /** Who started the sign-in (null: an API key). */
  userId: string | null;
  redirectTo: string | null;
}

/** Tokens an account can live on: with the refresh token that renews them. */
type RenewableTokens = TokenSet & { refreshToken: string };

/** What an OAuth account's sealed secret holds. */
interface SealedTokens {
  refresh_token: string;
  access_token: string;
  /** ISO 8601. */
  expires_at: string;
}

export const isOAuthAccount = (
  row: MailAccountRow,
): row is MailAccountRow & { provider: OAuthAccountProvider } => row.provider !== 'imap';

const stateHash = (state: string) => createHash('sha256').update(state).digest('hex');

const stored = (server: Config['oauth']['google']['imap']): StoredServer => ({ ...server, verify_tls: true });

/** One line, without control characters, short: the provider's words are shown to the user. */
const oneLine = (text: string | undefined) =>
  (text ?? '')
    .replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, 200);

export class AccountOAuth {
  readonly #o: AccountOAuthOptions;

  constructor(options: AccountOAuthOptions) {
    this.#o = options;
  }

  /** A sign-in that connects a new account: the provider's authorization URL to send the browser to. */
  start(
    organizationId: string,
    userId: string | null,
    provider: OAuthAccountProvider,
    input: OAuthStartInput,
  ) {
    return this.#begin(organizationId, userId, provider, null, input);
  }

  /** A sign-in that renews the tokens of an existing OAuth account (and lifts auth_failed). */
  async reauthorize(
    organizationId: string,
    userId: string | null,
    accountId: string,
    input: OAuthStartInput,
  ) {
    const account = await store.accountById(this.#o.db, organizationId, accountId);
    if (!account) throw notFound('Account');
    if (!isOAuthAccount(account))
      throw new AppError(
        409,
        'not_oauth_account',
        'This account logs in with a password; change it with PATCH /v1/accounts/{id}',
      );
    return this.#begin(organizationId, userId, account.provider, account, {
      ...input,
      login_hint: input.login_hint ?? account.address,
    });
  }

  /**
   * The provider's redirect: the state names the pending sign-in (once; expired ones are refused), the
   * code is exchanged, the servers are tested with the token, and the account is connected or renewed.
   */
  async callback(input: OAuthCallbackInput): Promise<OAuthCallbackResult> {
    if (!input.state) throw badRequest('The callback carries no state; start the sign-in again');
    const request = await oauthStore.takeRequest(this.#o.db, stateHash(input.state));
    if (!request)
      throw new AppError(
        400,
        'oauth_state_invalid',
        'This sign-in is unknown or was completed already; start it again',
      );
    try {
      const label = OAUTH_PROVIDERS[request.provider].label;
      if (request.expiresAt.getTime() <= Date.now())
        throw new AppError(
          400,
          'oauth_state_expired',
          'This sign-in expired (after 10 minutes); start it again',
        );
      if (input.error === 'access_denied')
        throw new AppError(403, 'oauth_access_denied', `Access to the ${label} account was not granted`);
      if (input.error)
        throw new AppError(
          400,
          'oauth_refused',
          `${label} refused the sign-in: ${oneLine(input.error)} ${oneLine(input.error_description)}`.trim(),
        );
      if (!input.code) throw badRequest('The callback carries neither a code nor an error');
      const tokens = await this.#exchange(request.provider, input.code, request.codeVerifier);
      const address = normaliseEmail(tokens.email, 'address');
      const done = request.accountId
        ? await this.#renew(request.organizationId, request.accountId, address, tokens)
        : await this.#connect(
            request.organizationId,
            request.userId,
            request.provider,
            request.name,
            address,
            tokens,
          );
      return { ...done, userId: request.userId, redirectTo: request.redirectTo };
    } catch (err) {
      const problem = err instanceof ProviderError ? providerProblem(err) : err;
      throw problem instanceof AppError ? new OAuthCallbackError(problem, request.redirectTo) : problem;
    }
  }

  /**
   * The login for an OAuth account's servers: its access token while it has more than two minutes left,
   * else a new one. The refresh happens under the account row's lock (`select … for update`), and only
   * if the token read under the lock is still stale: concurrent callers in any process wait and get the
   * token the first one stored. A refused grant (revoked, expired, needs the user) moves the account to
   * auth_failed, emits account.auth_failed and throws AccountAuthError; other OAuth failures (provider
   * down, rate limited) throw their OAuthError and change nothing.
   */
  async credentials(row: MailAccountRow & { provider: OAuthAccountProvider }): Promise<Credentials> {
    if (row.state !== 'auth_failed') {
      const cached = this.#unseal(row.secret);
      if (fresh(cached)) return { username: row.username, accessToken: cached.access_token };
    }
    const outcome = await this.#o.db.transaction(async (tx) => {
      const locked = await oauthStore.lockAccount(tx, row.organizationId, row.id);
      if (!locked) throw notFound('Account');
      if (locked.state === 'auth_failed')
        return { failed: locked.lastError ?? 'the provider refused the grant' };
      const tokens = this.#unseal(locked.secret);
      if (fresh(tokens)) return { username: locked.username, accessToken: tokens.access_token };
      try {
        const renewed = await OAUTH_PROVIDERS[row.provider].refresh(
          this.#client(row.provider),
          tokens.refresh_token,
        );
        // Microsoft sends a new refresh token with each refresh; Google keeps the first one working.
        const refreshToken = renewed.refreshToken ?? tokens.refresh_token;
        await oauthStore.writeSecret(
          tx,
          row.organizationId,
          row.id,
          this.#seal({ ...renewed, refreshToken }),
        );
        return { username: locked.username, accessToken: renewed.accessToken };
      } catch (err) {
        if (!(err instanceof OAuthError && err.reason === 'invalid_grant')) throw err;
        // Recorded in this transaction, which commits: the caller gets the error after it.
        const failed = await store.updateAccount(tx, row.organizationId, row.id, {
          state: 'auth_failed',
          lastError: err.message,
          lastErrorAt: new Date(),
        });
        await this.#o.events.emit(tx, accountAuthFailed, row.organizationId, {
          ...accountRef(failed ?? locked),
          error: err.message,
        });
        return { failed: err.message };
      }
    });
    if ('failed' in outcome)
      throw new AccountAuthError(
        row.id,
        `${row.address} must be authorised again (POST /v1/accounts/${row.id}/oauth/start): ${outcome.failed}`,
      );
    return outcome;
  }

  async #begin(
    organizationId: string,
    userId: string | null,
    provider: OAuthAccountProvider,
    account: MailAccountRow | null,
    input: OAuthStartInput,
  ): Promise<{ url: string; state: string }> {
    const config = this.#client(provider);
    const redirectTo = input.redirect_to ? this.#safeRedirect(input.redirect_to) : null;
    const request = OAUTH_PROVIDERS[provider].authorizationRequest(config, {
      loginHint: input.login_hint?.trim() || undefined,
    });
    const now = new Date();
    // Abandoned sign-ins go as new ones start: the table holds about ten minutes' worth.
    await oauthStore.deleteExpiredRequests(this.#o.db, now);
    await oauthStore.insertRequest(this.#o.db, {
      stateHash: stateHash(request.state),
      organizationId,
      userId,
      provider,
      accountId: account?.id ?? null,
      codeVerifier: this.#o.secrets.encrypt(request.codeVerifier),
      name: input.name?.trim() || null,
      redirectTo,
      expiresAt: new Date(now.getTime() + REQUEST_TTL_MS),
      createdAt: now,
    });
    return { url: request.url, state: request.state };
  }

  /** The code for tokens, with the address they are for and a refresh token, or a 4xx saying why not. */
  async #exchange(
    provider: OAuthAccountProvider,
    code: string,
    sealedVerifier: string,
  ): Promise<RenewableTokens & { email: string }> {
    const { label } = OAUTH_PROVIDERS[provider];
    let tokens: ExchangedTokens;
    try {
      tokens = await OAUTH_PROVIDERS[provider].exchangeCode(
        this.#client(provider),
        code,
        this.#o.secrets.decrypt(sealedVerifier),
      );
    } catch (err) {
      // A wrong, used or expired code (or one of another client) is the request's fault, not the provider's.
      if (err instanceof OAuthError && (err.reason === 'invalid_grant' || err.reason === 'rejected'))
        throw new AppError(
          400,
          'oauth_code_invalid',
          `${label} refused the authorization code (${err.oauthError ?? 'rejected'}); start the sign-in again`,
        );
      throw err;
    }
    if (!tokens.email)
      throw new AppError(
        422,
        'oauth_no_address',
        `${label} did not say which address signed in; allow access to the email address and try again`,
      );
    if (!tokens.refreshToken)
      throw new AppError(
        422,
        'oauth_no_refresh_token',
        `${label} granted no refresh token, so the account would stop working within the hour; check that the app asks for offline access`,
      );
    return { ...tokens, email: tokens.email, refreshToken: tokens.refreshToken };
  }

  /** Logs in to the provider's IMAP server, then its SMTP server, with the token. */
  async #test(provider: OAuthAccountProvider, address: string, accessToken: string): Promise<void> {
    const { imap, smtp } = this.#o.settings[provider];
    const credentials = { username: address, accessToken };
    const server = (s: typeof imap) => ({
      host: s.host,
      port: s.port,
      security: s.security,
      verifyTls: true,
    });
    let diagnosis: Diagnosis = await diagnoseImap(server(imap), credentials);
    if (diagnosis.ok) diagnosis = await diagnoseSmtp(server(smtp), credentials);
    if (!diagnosis.ok)
      throw new AppError(
        422,
        'connection_failed',
        `${diagnosis.protocol.toUpperCase()}: ${diagnosis.message}`,
        {
          extensions: { diagnosis },
        },
      );
  }

  async #connect(
    organizationId: string,
    userId: string | null,
    provider: OAuthAccountProvider,
    name: string | null,
    address: string,
    tokens: RenewableTokens,
  ): Promise<Pick<OAuthCallbackResult, 'account' | 'created'>> {
    if (await store.accountByAddress(this.#o.db, organizationId, address))
      throw conflict(
        `The account ${address} is connected already; authorise it again from the account instead`,
      );
    await this.#test(provider, address, tokens.accessToken);
    const { imap, smtp } = this.#o.settings[provider];
    return this.#o.db.transaction(async (tx) => {
      const row = await store.insertAccount(tx, {
        id: newId(),
        organizationId,
        provider,
        address,
        name: name ?? '',
        username: address,
        imap: stored(imap),
        smtp: stored(smtp),
        secret: this.#seal(tokens),
        state: 'connecting',
        createdBy: userId,
      });
      await this.#o.events.emit(tx, accountConnected, organizationId, accountRef(row));
      return { account: row, created: true };
    });
  }

  async #renew(
    organizationId: string,
    accountId: string,
    address: string,
    tokens: RenewableTokens,
  ): Promise<Pick<OAuthCallbackResult, 'account' | 'created'>> {
    const current = await store.accountById(this.#o.db, organizationId, accountId);
    if (!current || !isOAuthAccount(current)) throw notFound('Account');
    if (address !== current.address)
      throw new AppError(
        409,
        'oauth_account_mismatch',
        `Signed in as ${address}, but this account is ${current.address}; sign in with that address`,
      );
    await this.#test(current.provider, current.username, tokens.accessToken);
    return this.#o.db.transaction(async (tx) => {
      const set: Partial<NewMailAccount> = { secret: this.#seal(tokens) };
      const changes = ['authorization'];
      // Working tokens lift the failure they caused.
      if (current.state === 'auth_failed' || current.state === 'error') {
        set.state = 'connecting';
        set.lastError = null;
        set.lastErrorAt = null;
        changes.push('state');
      }
      const row = await store.updateAccount(tx, organizationId, accountId, set);
      if (!row) throw notFound('Account');
      await this.#o.events.emit(tx, accountUpdated, organizationId, {
        ...accountRef(row),
        changes,
        state: row.state,
      });
      return { account: row, created: false };
    });
  }

  #client(provider: OAuthAccountProvider): OAuthClientConfig {
    const settings = this.#o.settings[provider];
    if (!settings.client)
      throw new AppError(
        422,
        'oauth_not_configured',
        `Signing in with ${OAUTH_PROVIDERS[provider].label} is not set up on this server (MAILROOM_OAUTH_${provider.toUpperCase()}_CLIENT_ID and _CLIENT_SECRET)`,
      );
    return {
      ...settings.client,
      redirectUri: this.#o.settings.redirectUri,
      endpoints: settings.endpoints,
      scopes: DEFAULT_SCOPES[provider],
    };
  }

  /**
   * redirect_to, absolute: on this server or an origin the API already trusts (MAILROOM_CORS_ORIGINS),
   * never elsewhere, so that the callback cannot be made an open redirect.
   */
  #safeRedirect(target: string): string {
    const base = new URL(this.#o.publicUrl);
    const origins = new Set([base.origin]);
    for (const origin of this.#o.corsOrigins) if (URL.canParse(origin)) origins.add(new URL(origin).origin);
    const url = URL.canParse(target, base.href) ? new URL(target, base) : null;
    if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password || !origins.has(url.origin))
      throw validationFailed(
        'redirect_to',
        'must be a URL on this server or an origin in MAILROOM_CORS_ORIGINS',
      );
    return url.toString();
  }

  /**
   * The provider's IMAP or SMTP server refused this access token although it has not expired (revoked
   * early, or the user's sessions were ended): the next credentials() refreshes it. A token another
   * process has refreshed meanwhile is left alone.
   */
  async refuseAccessToken(row: MailAccountRow, accessToken: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const locked = await oauthStore.lockAccount(tx, row.organizationId, row.id);
      if (!locked) return;
      const tokens = this.#unseal(locked.secret);
      if (tokens.access_token !== accessToken) return;
      const stale = { ...tokens, expires_at: new Date(0).toISOString() };
      await oauthStore.writeSecret(
        tx,
        row.organizationId,
        row.id,
        this.#o.secrets.encrypt(JSON.stringify(stale)),
      );
    });
  }

  #seal(tokens: RenewableTokens): string {
    const sealed: SealedTokens = {
      refresh_token: tokens.refreshToken,
      access_token: tokens.accessToken,
      expires_at: tokens.expiresAt.toISOString(),
    };
    return this.#o.secrets.encrypt(JSON.stringify(sealed));
  }

  #unseal(secret: string): SealedTokens {
    return JSON.parse(this.#o.secrets.decrypt(secret)) as SealedTokens;
  }
}

function fresh(tokens: SealedTokens): boolean {
  return Date.parse(tokens.expires_at) - Date.now() > REFRESH_MARGIN_MS;
}
