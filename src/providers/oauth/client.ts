// The OAuth 2.0 authorization code flow with PKCE (RFC 6749, RFC 7636) as Google and Microsoft
// document it, shared by both; each provider file says only how it differs. Requests go through fetch
// with a timeout; every failure becomes an OAuthError whose message carries the provider's words and
// never a secret, code or token.
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt, type JWTPayload } from 'jose';
import { OAuthError, type OAuthFailure } from './errors.ts';
import type {
  AuthorizationOptions,
  AuthorizationRequest,
  ExchangedTokens,
  OAuthClientConfig,
  OAuthEndpoints,
  OAuthProvider,
  OAuthProviderName,
  OAuthRequestOptions,
  TokenSet,
} from './types.ts';

export const DEFAULT_TIMEOUT_MS = 15_000;
// Both providers document one-hour access tokens; used only if a response leaves expires_in out.
const DEFAULT_EXPIRES_IN_SECONDS = 3600;
// 32 random bytes make the shortest verifier RFC 7636 allows (43 characters), with 256 bits of entropy.
const VERIFIER_BYTES = 32;
const STATE_BYTES = 24;
const MAX_DESCRIPTION_CHARS = 200;

/** Parameters the flow sets itself; `extra` may not replace them. */
const RESERVED_PARAMS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
]);

// Errors after which only the user can help: a revoked or expired grant, or one that needs them to sign
// in again (Microsoft answers a refresh with interaction_required when MFA or conditional access asks).
const REAUTHORIZE_ERRORS = new Set([
  'invalid_grant',
  'interaction_required',
  'consent_required',
  'login_required',
]);
// The client itself is refused; Google names some cases on their own.
const CLIENT_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'redirect_uri_mismatch',
  'deleted_client',
  'disabled_client',
]);
const UNAVAILABLE_ERRORS = new Set(['server_error', 'temporarily_unavailable']);
const RATE_LIMIT_ERRORS = new Set(['rate_limit_exceeded', 'slow_down']);

/** How one provider differs from the common flow. */
export interface OAuthFlavour {
  name: OAuthProviderName;
  label: string;
  endpoints: OAuthEndpoints;
  scopes: string[];
  /** Query parameters this provider needs on the authorization URL beyond the standard ones. */
  authorizationParams: Record<string, string>;
  /** The account's address from id_token or userinfo claims, or null. */
  emailFromClaims(claims: Record<string, unknown>): string | null;
}

interface TokenResponse {
  access_token: string;
  expires_in: number;
  refresh_token: string | null;
  scope: string | null;
  id_token: string | null;
}

interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** Replaces every secret in `text`; provider descriptions and network errors may echo request values. */
type Redact = (text: string) => string;

function redactor(secrets: (string | undefined)[]): Redact {
  const present = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4);
  return (text) => present.reduce((result, secret) => result.replaceAll(secret, '[redacted]'), text);
}

function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))). */
export function codeChallenge(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

/** An address as far as a claim can promise one: something@something, no spaces. */
export function addressOrNull(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return /^[^\s@]+@[^\s@]+$/.test(trimmed) ? trimmed : null;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
function retryAfterSeconds(headers: Headers): number | null {
  const value = headers.get('retry-after')?.trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first line of a provider's description (Microsoft appends trace IDs), short and redacted. */
function describe(description: unknown, redact: Redact): string {
  if (typeof description !== 'string') return '';
  const line = redact(
    description
      .split(/\r?\n/)[0]
      .replace(/[\p{Cc}]/gu, ' ')
      .trim(),
  );
  return line.length > MAX_DESCRIPTION_CHARS ? `${line.slice(0, MAX_DESCRIPTION_CHARS)}…` : line;
}

function reasonFor(oauthError: string): OAuthFailure {
  if (REAUTHORIZE_ERRORS.has(oauthError)) return 'invalid_grant';
  if (CLIENT_ERRORS.has(oauthError)) return 'invalid_client';
  if (UNAVAILABLE_ERRORS.has(oauthError)) return 'unavailable';
  if (RATE_LIMIT_ERRORS.has(oauthError)) return 'rate_limited';
  return 'rejected';
}

const ADVICE: Partial<Record<OAuthFailure, string>> = {
  invalid_grant: '; the account must be authorised again',
  invalid_client: '; check the OAuth client ID, secret and redirect URI',
};

/** An RFC 6749 §5.2 error response (`{"error": ..., "error_description": ...}`) as an OAuthError. */
function oauthRefusal(
  flavour: OAuthFlavour,
  subject: string,
  body: Record<string, unknown>,
  answer: HttpAnswer,
  redact: Redact,
): OAuthError {
  // The code is an ASCII token by the RFC; anything else is not repeated.
  const oauthError = /^[\x20-\x7e]{1,64}$/.test(String(body.error)) ? String(body.error) : 'unknown_error';
  const reason = answer.status === 429 ? 'rate_limited' : reasonFor(oauthError);
  const description = describe(body.error_description, redact);
  const details = description ? `${oauthError} (${description})` : oauthError;
  return new OAuthError(reason, `${flavour.label} refused ${subject}: ${details}${ADVICE[reason] ?? ''}`, {
    oauthError,
    retryAfterSeconds: reason === 'rate_limited' ? retryAfterSeconds(answer.headers) : null,
  });
}

/** The failure for an answer that is not a success, whatever its shape. */
function httpFailure(
  flavour: OAuthFlavour,
  subject: string,
  answer: HttpAnswer,
  body: unknown,
  redact: Redact,
): OAuthError {
  if (isObject(body) && typeof body.error === 'string')
    return oauthRefusal(flavour, subject, body, answer, redact);
  if (answer.status === 429) {
    const wait = retryAfterSeconds(answer.headers);
    const when = wait === null ? '' : `; retry in ${wait} s`;
    return new OAuthError('rate_limited', `${flavour.label} rate limit reached (${subject})${when}`, {
      retryAfterSeconds: wait,
    });
  }
  if (answer.status >= 500)
    return new OAuthError('unavailable', `${flavour.label} failed on ${subject}: HTTP ${answer.status}`);
  if (answer.status === 401 || answer.status === 403)
    return new OAuthError('rejected', `${flavour.label} refused ${subject}: HTTP ${answer.status}`);
  return new OAuthError('malformed', `${flavour.label} answered ${subject} with HTTP ${answer.status}`);
}

/** One request with a timeout; a network failure or a timeout is `unavailable`. */
async function send(
  flavour: OAuthFlavour,
  subject: string,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  redact: Redact,
): Promise<HttpAnswer> {
  try {
    const response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (err) {
    const error = err as Error & { cause?: { code?: string; message?: string } };
    if (error.name === 'TimeoutError' || error.name === 'AbortError')
      throw new OAuthError(
        'unavailable',
        `${flavour.label} did not answer ${subject} within ${timeoutMs / 1000} s`,
      );
    const reason = error.cause?.code ?? error.cause?.message ?? error.message;
    throw new OAuthError(
      'unavailable',
      `${flavour.label} could not be reached (${subject}): ${redact(reason)}`,
    );
  }
}

function optionalString(body: Record<string, unknown>, field: string): string | null | undefined {
  const value = body[field];
  if (value === undefined || value === null) return null;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** RFC 6749 §5.1 fields, checked; undefined where a field is missing or has the wrong type. */
function readTokenResponse(body: Record<string, unknown>): TokenResponse | undefined {
  const accessToken = body.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') return undefined;
  // Only bearer tokens work with XOAUTH2; the type is compared case-insensitively (RFC 6749 §5.1).
  if (body.token_type !== undefined && String(body.token_type).toLowerCase() !== 'bearer') return undefined;
  // Microsoft's older endpoints sent expires_in as a string of digits.
  const rawExpiry = body.expires_in ?? DEFAULT_EXPIRES_IN_SECONDS;
  const expiresIn = typeof rawExpiry === 'string' && /^\d+$/.test(rawExpiry) ? Number(rawExpiry) : rawExpiry;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn < 0) return undefined;
  const refreshToken = optionalString(body, 'refresh_token');
  const scope = body.scope === '' ? null : optionalString(body, 'scope');
  const idToken = optionalString(body, 'id_token');
  if (refreshToken === undefined || scope === undefined || idToken === undefined) return undefined;
  return {
    access_token: accessToken,
    expires_in: expiresIn,
    refresh_token: refreshToken,
    scope,
    id_token: idToken,
  };
}

/** POSTs a grant to the token endpoint with the client's credentials (client_secret_post). */
async function tokenRequest(
  flavour: OAuthFlavour,
  config: OAuthClientConfig,
  subject: string,
  grant: Record<string, string>,
  options: OAuthRequestOptions,
  redact: Redact,
): Promise<TokenResponse> {
  const body = new URLSearchParams({
    client_id: config.clientId,
    client_secret: config.clientSecret,
    ...grant,
  });
  const answer = await send(
    flavour,
    subject,
    config.endpoints.tokenUrl,
    {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
    },
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    redact,
  );
  const json = parseJson(answer.text);
  if (answer.status !== 200 || (isObject(json) && json.error !== undefined))
    throw httpFailure(flavour, subject, answer, json, redact);
  const response = isObject(json) ? readTokenResponse(json) : undefined;
  if (!response)
    throw new OAuthError(
      'malformed',
      json === undefined
        ? `${flavour.label} answered ${subject} with something that is not JSON`
        : `${flavour.label} answered ${subject} without a valid access token`,
    );
  return response;
}

function toTokenSet(response: TokenResponse, options: OAuthRequestOptions): TokenSet {
  const now = options.now?.() ?? Date.now();
  return {
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    expiresAt: new Date(now + response.expires_in * 1000),
    scope: response.scope,
    idToken: response.id_token,
  };
}

/**
 * The id_token's claims, unverified: it came straight from the token endpoint over TLS, which OpenID
 * Connect Core §3.1.3.7 accepts in place of checking the signature.
 */
function idTokenClaims(flavour: OAuthFlavour, idToken: string): JWTPayload {
  try {
    return decodeJwt(idToken);
  } catch {
    throw new OAuthError('malformed', `${flavour.label} answered with an id_token that is not a JWT`);
  }
}

/** The claims of the OpenID Connect userinfo endpoint, asked with the new access token. */
async function userinfoClaims(
  flavour: OAuthFlavour,
  url: string,
  accessToken: string,
  options: OAuthRequestOptions,
  redact: Redact,
): Promise<Record<string, unknown>> {
  const subject = 'the user info request';
  const answer = await send(
    flavour,
    subject,
    url,
    { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } },
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    redact,
  );
  const json = parseJson(answer.text);
  if (answer.status !== 200) throw httpFailure(flavour, subject, answer, json, redact);
  if (!isObject(json))
    throw new OAuthError(
      'malformed',
      `${flavour.label} answered ${subject} with something that is not a JSON object`,
    );
  return json;
}

/** The account's address: from the id_token when it has one, else from the userinfo endpoint. */
async function accountEmail(
  flavour: OAuthFlavour,
  config: OAuthClientConfig,
  tokens: TokenSet,
  options: OAuthRequestOptions,
  redact: Redact,
): Promise<string | null> {
  const fromIdToken = tokens.idToken ? flavour.emailFromClaims(idTokenClaims(flavour, tokens.idToken)) : null;
  if (fromIdToken || !config.endpoints.userinfoUrl) return fromIdToken;
  const claims = await userinfoClaims(
    flavour,
    config.endpoints.userinfoUrl,
    tokens.accessToken,
    options,
    redact,
  );
  return flavour.emailFromClaims(claims);
}

function authorizationRequest(
  flavour: OAuthFlavour,
  config: OAuthClientConfig,
  options: AuthorizationOptions,
): AuthorizationRequest {
  if (config.scopes.length === 0)
    throw new Error(`an OAuth client for ${flavour.label} needs at least one scope`);
  for (const key of Object.keys(options.extra ?? {}))
    if (RESERVED_PARAMS.has(key))
      throw new Error(`the authorization parameter ${key} is set by the OAuth flow`);

  const state = randomToken(STATE_BYTES);
  const codeVerifier = randomToken(VERIFIER_BYTES);
  const url = new URL(config.endpoints.authorizeUrl);
  const params: Record<string, string> = {
    ...flavour.authorizationParams,
    ...options.extra,
    client_id: config.clientId,
    redirect_uri: config.redirectUri,
    response_type: 'code',
    scope: config.scopes.join(' '),
    state,
    code_challenge: codeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  };
  if (options.loginHint) params.login_hint = options.loginHint;
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return { url: url.toString(), state, codeVerifier };
}

async function exchangeCode(
  flavour: OAuthFlavour,
  config: OAuthClientConfig,
  code: string,
  codeVerifier: string,
  options: OAuthRequestOptions,
): Promise<ExchangedTokens> {
  const redact = redactor([config.clientSecret, code, codeVerifier]);
  const response = await tokenRequest(
    flavour,
    config,
    'the authorization code',
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: config.redirectUri,
      code_verifier: codeVerifier,
    },
    options,
    redact,
  );
  const tokens = toTokenSet(response, options);
  const email = await accountEmail(
    flavour,
    config,
    tokens,
    options,
    redactor([config.clientSecret, tokens.accessToken]),
  );
  return { ...tokens, email };
}

async function refresh(
  flavour: OAuthFlavour,
  config: OAuthClientConfig,
  refreshToken: string,
  options: OAuthRequestOptions,
): Promise<TokenSet> {
  const redact = redactor([config.clientSecret, refreshToken]);
  const response = await tokenRequest(
    flavour,
    config,
    'the refresh token',
    { grant_type: 'refresh_token', refresh_token: refreshToken },
    options,
    redact,
  );
  const tokens = toTokenSet(response, options);
  // Microsoft rotates refresh tokens (keep the new one); Google keeps issuing against the old one.
  return { ...tokens, refreshToken: tokens.refreshToken ?? refreshToken };
}

/** An OAuthProvider from how it differs from the common flow. */
export function defineOAuthProvider(flavour: OAuthFlavour): OAuthProvider {
  return {
    name: flavour.name,
    label: flavour.label,
    defaultEndpoints: Object.freeze({ ...flavour.endpoints }),
    defaultScopes: Object.freeze([...flavour.scopes]),
    authorizationRequest: (config, options = {}) => authorizationRequest(flavour, config, options),
    exchangeCode: (config, code, codeVerifier, options = {}) =>
      exchangeCode(flavour, config, code, codeVerifier, options),
    refresh: (config, refreshToken, options = {}) => refresh(flavour, config, refreshToken, options),
  };
}
