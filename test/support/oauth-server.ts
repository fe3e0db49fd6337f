// A stand-in for Google's and Microsoft's OAuth 2.0 endpoints on loopback: the authorization endpoint
// (without a sign-in page: a test "user" approves with `approve`, or follows the 302 it answers a GET
// with), the token endpoint (authorization_code with PKCE S256, refresh_token) and Google's userinfo,
// each with its provider's documented parameters, status codes and error bodies. What it issued is
// open to inspection, so a test IMAP or SMTP server can accept XOAUTH2 only with a live access token:
// in process through `isLive`, or over HTTP through the RFC 7662 introspection endpoint (Dovecot's
// oauth2 passdb asks it).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { OAuthEndpoints, OAuthProviderName } from '../../src/providers/oauth/types.ts';

const PATHS = {
  google: { authorize: '/google/o/oauth2/v2/auth', token: '/google/token', userinfo: '/google/userinfo' },
  microsoft: {
    authorize: '/microsoft/common/oauth2/v2.0/authorize',
    token: '/microsoft/common/oauth2/v2.0/token',
    userinfo: null,
  },
} as const;
/** Both providers let an authorization code live for minutes at most; Google documents none, so one. */
const CODE_TTL_SECONDS = 60;
const ID_TOKEN_TTL_SECONDS = 3600;
// What the personal-account tenant is called in Microsoft's tokens.
const MICROSOFT_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const GOOGLE_PROMPTS = new Set(['none', 'consent', 'select_account']);

type Flavour = OAuthProviderName;
type Endpoint = 'authorize' | 'token' | 'userinfo' | 'introspect';
const INTROSPECT_PATH = '/introspect';

/** What the server answers the next token or userinfo request with instead of doing its job. */
export type FailureMode =
  /** 503 with an HTML page. */
  | 'unavailable'
  /** 429 with Retry-After: 7. */
  | 'rate_limited'
  /** 200 whose body is cut-off JSON. */
  | 'malformed'
  /** 200 JSON without an access_token. */
  | 'incomplete'
  /** Never answers (the connection stays open until close). */
  | 'hang';

export interface OAuthTestClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface IssuedToken {
  flavour: Flavour;
  email: string;
  clientId: string;
  scopes: string[];
  expiresAt: Date;
}

export interface LoggedOAuthRequest {
  flavour: Flavour | null;
  endpoint: Endpoint | null;
  method: string;
  path: string;
  /** The query (GET) or the form (POST), as sent. */
  params: Record<string, string>;
  authorization: string | null;
  contentType: string | null;
}

export interface OAuthServerOptions {
  /** Access token lifetime in seconds; 3600 unless set. */
  expiresIn?: number;
  /** Who signs in when a GET to the authorization endpoint carries no login_hint. */
  defaultEmail?: string;
  /** The redirect URI both clients are registered with; each flavour has its own under mailroom.test unless set. */
  redirectUri?: string;
}

export interface OAuthServer {
  baseUrl: string;
  /** The one client registered with each flavour. */
  clients: Record<Flavour, OAuthTestClient>;
  endpoints(flavour: Flavour): OAuthEndpoints;
  /**
   * RFC 7662 token introspection for both flavours (POST `token=`): `{active: true, email, username,
   * scope, client_id, exp}` for a live access token, `{active: false}` otherwise. Neither provider has
   * one for mail tokens; it is how a test IMAP or SMTP server outside this process asks `isLive`.
   */
  introspectionUrl: string;
  /** The user signs in as `email` and consents: the redirect URL carrying code and state (or an error). */
  approve(authorizeUrl: string, user: { email: string }): string;
  /** The user declines: the redirect URL carrying error=access_denied and state. */
  deny(authorizeUrl: string): string;
  /** Every access token issued and not revoked, with whom it is for and when it expires. */
  tokens: ReadonlyMap<string, IssuedToken>;
  /** The address an access token is for, if it is known, unrevoked and unexpired. */
  isLive(accessToken: string): string | null;
  /** Every access token issued so far expires now. */
  expireAll(): void;
  /** The user withdraws access: refresh tokens stop working and access tokens die. */
  revoke(email: string): void;
  /** Moves the server's clock (code and token expiry) forward. */
  advance(seconds: number): void;
  failNext(mode: FailureMode, count?: number): void;
  requests: LoggedOAuthRequest[];
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** An authorization request that passed every check. */
interface ValidAuthorization {
  flavour: Flavour;
  client: OAuthTestClient;
  redirectUri: string;
  state: string;
  codeChallenge: string;
  scopes: string[];
  /** Google: access_type=offline. */
  offline: boolean;
  /** Google: prompt includes consent. */
  consent: boolean;
}

interface StoredCode extends ValidAuthorization {
  email: string;
  expiresAt: number;
  redeemed: boolean;
}

interface StoredRefreshToken {
  flavour: Flavour;
  email: string;
  clientId: string;
  scopes: string[];
  revoked: boolean;
}

/** Refused before a redirect can be trusted (unknown client, unregistered redirect URI): a page, no redirect. */
class PageError extends Error {}

/** Refused with an error sent back to the client's redirect URI (RFC 6749 §4.1.2.1). */
class RedirectError extends Error {
  readonly redirectUri: string;
  readonly state: string | null;
  readonly error: string;

  constructor(redirectUri: string, state: string | null, error: string, description: string) {
    super(description);
    this.redirectUri = redirectUri;
    this.state = state;
    this.error = error;
  }
}

/** A token or userinfo request refused with an RFC 6749 §5.2 error. */
class TokenError extends Error {
  readonly status: number;
  readonly error: string;
  /** Microsoft's AADSTS number, part of its error_description. */
  readonly aadsts: number;

  constructor(status: number, error: string, aadsts: number, description: string) {
    super(description);
    this.status = status;
    this.error = error;
    this.aadsts = aadsts;
  }
}

function token(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    body: JSON.stringify(body),
    // Both providers forbid caching token responses (RFC 6749 §5.1).
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  };
}

/** Google's error body is the bare RFC one; Microsoft adds its AADSTS number and trace fields. */
function errorBody(flavour: Flavour, error: TokenError): Record<string, unknown> {
  if (flavour === 'google') return { error: error.error, error_description: error.message };
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const traceId = randomUUID();
  const correlationId = randomUUID();
  return {
    error: error.error,
    error_description: `AADSTS${error.aadsts}: ${error.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [error.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${error.aadsts}`,
  };
}

/** Form or query parameters; a repeated one is refused (RFC 6749 §3.1, §3.2). */
function singleParams(params: URLSearchParams): Record<string, string> | null {
  const result: Record<string, string> = {};
  for (const [key, value] of params) {
    if (Object.hasOwn(result, key)) return null;
    result[key] = value;
  }
  return result;
}

function route(pathname: string): { flavour: Flavour; endpoint: Endpoint } | null {
  for (const flavour of ['google', 'microsoft'] as const)
    for (const endpoint of ['authorize', 'token', 'userinfo'] as const)
      if (PATHS[flavour][endpoint] === pathname) return { flavour, endpoint };
  return null;
}

export async function startOAuthServer(options: OAuthServerOptions = {}): Promise<OAuthServer> {
  const expiresIn = options.expiresIn ?? 3600;
  const defaultEmail = options.defaultEmail ?? 'user@example.com';
  const clients: Record<Flavour, OAuthTestClient> = {
    google: {
      clientId: `${Math.floor(1e11 + Math.random() * 9e11)}-${token(12).toLowerCase()}.apps.googleusercontent.com`,
      clientSecret: `GOCSPX-${token(21)}`,
      redirectUri: options.redirectUri ?? 'https://mailroom.test/v1/oauth/google/callback',
    },
    microsoft: {
      clientId: randomUUID(),
      clientSecret: `${token(6)}~${token(24)}`,
      redirectUri: options.redirectUri ?? 'https://mailroom.test/v1/oauth/microsoft/callback',
    },
  };
  const idTokenKey = randomBytes(32);
  const codes = new Map<string, StoredCode>();
  const accessTokens = new Map<string, IssuedToken>();
  const refreshTokens = new Map<string, StoredRefreshToken>();
  // Google issues a refresh token without prompt=consent only on a user's first grant to a client.
  const googleGrants = new Set<string>();
  const subjects = new Map<string, string>();
  const requests: LoggedOAuthRequest[] = [];
  const failures: FailureMode[] = [];
  let clockOffsetMs = 0;
  let baseUrl = '';

  const now = () => Date.now() + clockOffsetMs;

  function subjectOf(email: string): string {
    let sub = subjects.get(email);
    if (!sub) {
      // Google's subjects are 21-digit numbers.
      sub = String(100_000_000_000_000_000_000n + BigInt(`0x${randomBytes(8).toString('hex')}`));
      subjects.set(email, sub);
    }
    return sub;
  }

  /** The checks of the authorization endpoint, in the order the providers apply them. */
  function validateAuthorization(url: URL): ValidAuthorization {
    const where = route(url.pathname);
    if (where?.endpoint !== 'authorize')
      throw new PageError(`not an authorization endpoint: ${url.pathname}`);
    const { flavour } = where;
    const params = singleParams(url.searchParams);
    if (!params) throw new PageError('Error 400: invalid_request (a parameter is repeated)');
    const client = clients[flavour];
    if (params.client_id !== client.clientId)
      throw new PageError(
        flavour === 'google'
          ? 'Error 401: invalid_client (The OAuth client was not found.)'
          : `AADSTS700016: Application with identifier '${params.client_id ?? ''}' was not found in the directory.`,
      );
    if (params.redirect_uri !== client.redirectUri)
      throw new PageError(
        flavour === 'google'
          ? 'Error 400: redirect_uri_mismatch'
          : 'AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.',
      );
    const state = params.state ?? null;
    const refuse = (error: string, description: string) =>
      new RedirectError(client.redirectUri, state, error, description);
    if (params.response_type !== 'code')
      throw refuse(
        'unsupported_response_type',
        'Only the authorization code flow (response_type=code) is supported.',
      );
    if (!state) throw refuse('invalid_request', 'Missing required parameter: state');
    if (!params.scope?.trim()) throw refuse('invalid_request', 'Missing required parameter: scope');
    if (!params.code_challenge || !CHALLENGE.test(params.code_challenge))
      throw refuse('invalid_request', 'Invalid or missing parameter: code_challenge');
    if (params.code_challenge_method !== 'S256')
      throw refuse('invalid_request', 'Invalid code_challenge_method: only S256 is accepted');

    const scopes = params.scope.trim().split(/\s+/);
    if (flavour === 'microsoft') {
      if (params.response_mode !== undefined && params.response_mode !== 'query')
        throw refuse('invalid_request', 'This server answers with response_mode=query only');
      return {
        flavour,
        client,
        redirectUri: client.redirectUri,
        state,
        codeChallenge: params.code_challenge,
        scopes,
        offline: false,
        consent: false,
      };
    }
    if (params.access_type !== undefined && !['online', 'offline'].includes(params.access_type))
      throw refuse('invalid_request', `Invalid access_type: ${params.access_type}`);
    const prompts = (params.prompt ?? '').split(' ').filter(Boolean);
    if (prompts.some((p) => !GOOGLE_PROMPTS.has(p)) || (prompts.includes('none') && prompts.length > 1))
      throw refuse('invalid_request', `Invalid prompt: ${params.prompt}`);
    return {
      flavour,
      client,
      redirectUri: client.redirectUri,
      state,
      codeChallenge: params.code_challenge,
      scopes,
      offline: params.access_type === 'offline',
      consent: prompts.includes('consent'),
    };
  }

  function redirect(redirectUri: string, params: Record<string, string | null>): string {
    const target = new URL(redirectUri);
    for (const [key, value] of Object.entries(params))
      if (value !== null) target.searchParams.set(key, value);
    return target.toString();
  }

  /** The redirect a decision leads to, or a PageError when the request cannot be redirected. */
  function decide(authorizeUrl: string, email: string | null): string {
    let request: ValidAuthorization;
    try {
      request = validateAuthorization(new URL(authorizeUrl));
    } catch (error) {
      if (error instanceof RedirectError)
        return redirect(error.redirectUri, {
          error: error.error,
          error_description: error.message,
          state: error.state,
        });
      throw error;
    }
    if (email === null)
      return redirect(request.redirectUri, { error: 'access_denied', state: request.state });
    const code = request.flavour === 'google' ? `4/0${token(40)}` : `M.C5${token(48)}`;
    codes.set(code, { ...request, email, expiresAt: now() + CODE_TTL_SECONDS * 1000, redeemed: false });
    return redirect(request.redirectUri, { code, state: request.state });
  }

  /** The client authenticates with client_secret_post or client_secret_basic (RFC 6749 §2.3.1), not both. */
  function authenticateClient(
    flavour: Flavour,
    params: Record<string, string>,
    authorization: string | null,
  ) {
    const client = clients[flavour];
    let id = params.client_id;
    let secret = params.client_secret;
    const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
    if (basic) {
      if (secret !== undefined)
        throw new TokenError(400, 'invalid_request', 9002313, 'Use one client authentication method.');
      const [user, ...rest] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
      if (id !== undefined && id !== decodeURIComponent(user))
        throw new TokenError(
          400,
          'invalid_request',
          9002313,
          'client_id does not match the Authorization header.',
        );
      id = decodeURIComponent(user);
      secret = decodeURIComponent(rest.join(':'));
    }
    if (id !== client.clientId)
      throw flavour === 'google'
        ? new TokenError(401, 'invalid_client', 0, 'The OAuth client was not found.')
        : new TokenError(
            400,
            'unauthorized_client',
            700016,
            `Application with identifier '${id ?? ''}' was not found in the directory.`,
          );
    if (secret !== client.clientSecret)
      throw flavour === 'google'
        ? new TokenError(401, 'invalid_client', 0, 'Unauthorized')
        : new TokenError(401, 'invalid_client', 7000215, 'Invalid client secret provided.');
    return client;
  }

  async function idToken(
    flavour: Flavour,
    clientId: string,
    email: string,
    scopes: string[],
  ): Promise<string> {
    const seconds = Math.floor(now() / 1000);
    const claims: Record<string, unknown> = {};
    if (flavour === 'google' && scopes.includes('email'))
      Object.assign(claims, { email, email_verified: true });
    if (flavour === 'microsoft') {
      if (scopes.includes('email')) claims.email = email;
      if (scopes.includes('profile')) claims.preferred_username = email;
      Object.assign(claims, { tid: MICROSOFT_TENANT, ver: '2.0' });
    }
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(
        flavour === 'google'
          ? 'https://accounts.google.com'
          : `https://login.microsoftonline.com/${MICROSOFT_TENANT}/v2.0`,
      )
      .setAudience(clientId)
      .setSubject(subjectOf(email))
      .setIssuedAt(seconds)
      .setExpirationTime(seconds + ID_TOKEN_TTL_SECONDS)
      .sign(idTokenKey);
  }

  /** A token response (RFC 6749 §5.1) in the provider's shape, and the access token recorded. */
  async function issue(
    flavour: Flavour,
    clientId: string,
    email: string,
    scopes: string[],
    refreshToken: string | null,
  ): Promise<Reply> {
    const accessToken = flavour === 'google' ? `ya29.${token(60)}` : `EwA${token(80)}`;
    accessTokens.set(accessToken, {
      flavour,
      email,
      clientId,
      scopes,
      expiresAt: new Date(now() + expiresIn * 1000),
    });
    const body: Record<string, unknown> = {
      access_token: accessToken,
      expires_in: expiresIn,
      token_type: 'Bearer',
      scope: scopes.join(' '),
    };
    if (flavour === 'microsoft') body.ext_expires_in = expiresIn;
    if (refreshToken) body.refresh_token = refreshToken;
    if (scopes.includes('openid')) body.id_token = await idToken(flavour, clientId, email, scopes);
    return json(200, body);
  }

  function newRefreshToken(flavour: Flavour, clientId: string, email: string, scopes: string[]): string {
    const value = flavour === 'google' ? `1//0${token(60)}` : `M.C5${token(90)}`;
    refreshTokens.set(value, { flavour, email, clientId, scopes, revoked: false });
    return value;
  }

  async function authorizationCodeGrant(
    flavour: Flavour,
    client: OAuthTestClient,
    params: Record<string, string>,
  ) {
    if (!params.code)
      throw new TokenError(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'code'.",
      );
    const stored = codes.get(params.code);
    if (!stored || stored.flavour !== flavour || stored.client.clientId !== client.clientId)
      throw new TokenError(
        400,
        'invalid_grant',
        9002313,
        flavour === 'google' ? 'Malformed auth code.' : 'Invalid request. Request is malformed or invalid.',
      );
    if (stored.redeemed)
      throw new TokenError(
        400,
        'invalid_grant',
        54005,
        flavour === 'google'
          ? 'Bad Request'
          : 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
      );
    // A code is spent by any attempt to redeem it, good or bad.
    stored.redeemed = true;
    if (now() > stored.expiresAt)
      throw new TokenError(
        400,
        'invalid_grant',
        70008,
        flavour === 'google'
          ? 'Bad Request'
          : 'The provided authorization code or refresh token has expired due to inactivity.',
      );
    if (params.redirect_uri !== stored.redirectUri)
      throw flavour === 'google'
        ? new TokenError(400, 'redirect_uri_mismatch', 0, 'Bad Request')
        : new TokenError(
            400,
            'invalid_grant',
            50011,
            'The redirect URI does not match the one the authorization code was issued for.',
          );
    if (!params.code_verifier) throw new TokenError(400, 'invalid_grant', 501481, 'Missing code verifier.');
    if (!VERIFIER.test(params.code_verifier) || s256(params.code_verifier) !== stored.codeChallenge)
      throw new TokenError(
        400,
        'invalid_grant',
        501481,
        flavour === 'google'
          ? 'Invalid code verifier.'
          : 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
      );

    const grantKey = `${client.clientId} ${stored.email}`;
    const withRefresh =
      flavour === 'google'
        ? stored.offline && (stored.consent || !googleGrants.has(grantKey))
        : stored.scopes.includes('offline_access');
    if (flavour === 'google') googleGrants.add(grantKey);
    const refreshToken = withRefresh
      ? newRefreshToken(flavour, client.clientId, stored.email, stored.scopes)
      : null;
    return issue(flavour, client.clientId, stored.email, stored.scopes, refreshToken);
  }

  async function refreshTokenGrant(
    flavour: Flavour,
    client: OAuthTestClient,
    params: Record<string, string>,
  ) {
    if (!params.refresh_token)
      throw new TokenError(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'refresh_token'.",
      );
    const stored = refreshTokens.get(params.refresh_token);
    if (!stored || stored.flavour !== flavour)
      throw new TokenError(
        400,
        'invalid_grant',
        9002313,
        flavour === 'google' ? 'Bad Request' : 'Invalid request. Request is malformed or invalid.',
      );
    if (stored.revoked)
      throw new TokenError(
        400,
        'invalid_grant',
        50173,
        flavour === 'google'
          ? 'Token has been expired or revoked.'
          : 'The provided grant has expired due to it being revoked, a fresh auth token is needed.',
      );
    if (stored.clientId !== client.clientId)
      throw new TokenError(
        400,
        flavour === 'google' ? 'unauthorized_client' : 'invalid_grant',
        700024,
        'The refresh token was issued to another client.',
      );
    // A narrower scope may be asked for, never a wider one.
    const asked = params.scope?.trim() ? params.scope.trim().split(/\s+/) : stored.scopes;
    if (asked.some((s) => !stored.scopes.includes(s)))
      throw new TokenError(400, 'invalid_scope', 70011, 'The requested scope exceeds the scope granted.');
    // Microsoft answers a refresh with a new refresh token (the old one stays valid until it expires).
    const rotated =
      flavour === 'microsoft' ? newRefreshToken(flavour, client.clientId, stored.email, stored.scopes) : null;
    return issue(flavour, client.clientId, stored.email, asked, rotated);
  }

  async function tokenEndpoint(flavour: Flavour, req: http.IncomingMessage, raw: string): Promise<Reply> {
    if (req.method !== 'POST')
      throw new TokenError(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
    const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (contentType !== 'application/x-www-form-urlencoded')
      throw new TokenError(
        400,
        'invalid_request',
        900144,
        'The request body must be application/x-www-form-urlencoded.',
      );
    const params = singleParams(new URLSearchParams(raw));
    if (!params) throw new TokenError(400, 'invalid_request', 9002313, 'A parameter is repeated.');
    const client = authenticateClient(flavour, params, req.headers.authorization ?? null);
    if (params.grant_type === 'authorization_code') return authorizationCodeGrant(flavour, client, params);
    if (params.grant_type === 'refresh_token') return refreshTokenGrant(flavour, client, params);
    if (!params.grant_type)
      throw new TokenError(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    throw new TokenError(
      400,
      'unsupported_grant_type',
      70003,
      `Unsupported grant type: ${params.grant_type}`,
    );
  }

  /** OpenID Connect userinfo: the claims the access token's scopes allow. */
  function userinfoEndpoint(req: http.IncomingMessage): Reply {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const issued = bearer ? accessTokens.get(bearer[1]) : undefined;
    if (!bearer || !issued || issued.expiresAt.getTime() <= now() || issued.flavour !== 'google')
      return json(
        401,
        { error: 'invalid_request', error_description: 'Invalid Credentials' },
        { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      );
    const claims: Record<string, unknown> = { sub: subjectOf(issued.email) };
    if (issued.scopes.includes('email')) Object.assign(claims, { email: issued.email, email_verified: true });
    return json(200, claims);
  }

  /** RFC 7662 §2: whether the token is live, and for whom; a dead or unknown token is only inactive. */
  function introspectionEndpoint(req: http.IncomingMessage, raw: string): Reply {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (req.method !== 'POST' || contentType !== 'application/x-www-form-urlencoded')
      return json(400, { error: 'invalid_request', error_description: 'POST a form with token=' });
    const params = singleParams(new URLSearchParams(raw));
    if (!params?.token) return json(400, { error: 'invalid_request', error_description: 'Missing token' });
    const issued = accessTokens.get(params.token);
    if (!issued || issued.expiresAt.getTime() <= now()) return json(200, { active: false });
    return json(200, {
      active: true,
      token_type: 'Bearer',
      email: issued.email,
      username: issued.email,
      scope: issued.scopes.join(' '),
      client_id: issued.clientId,
      exp: Math.floor(issued.expiresAt.getTime() / 1000),
    });
  }

  function failure(mode: FailureMode): Reply | null {
    switch (mode) {
      case 'unavailable':
        return {
          status: 503,
          body: '<html><body>Service Unavailable</body></html>',
          headers: { 'content-type': 'text/html' },
        };
      case 'rate_limited':
        return json(
          429,
          { error: 'rate_limit_exceeded', error_description: 'Rate Limit Exceeded' },
          { 'retry-after': '7' },
        );
      case 'malformed':
        return {
          status: 200,
          body: '{"access_token": "ya29.cut',
          headers: { 'content-type': 'application/json' },
        };
      case 'incomplete':
        return json(200, { token_type: 'Bearer', expires_in: expiresIn });
      case 'hang':
        return null;
    }
  }

  async function handle(req: http.IncomingMessage, raw: string): Promise<Reply | null> {
    const url = new URL(req.url ?? '/', baseUrl);
    if (url.pathname === INTROSPECT_PATH) {
      requests.push({
        flavour: null,
        endpoint: 'introspect',
        method: req.method ?? 'GET',
        path: url.pathname,
        params: {},
        authorization: req.headers.authorization ?? null,
        contentType: req.headers['content-type'] ?? null,
      });
      return introspectionEndpoint(req, raw);
    }
    const where = route(url.pathname);
    const contentType = req.headers['content-type'] ?? null;
    const params =
      req.method === 'POST' && contentType?.startsWith('application/x-www-form-urlencoded')
        ? new URLSearchParams(raw)
        : url.searchParams;
    requests.push({
      flavour: where?.flavour ?? null,
      endpoint: where?.endpoint ?? null,
      method: req.method ?? 'GET',
      path: url.pathname,
      params: Object.fromEntries(params),
      authorization: req.headers.authorization ?? null,
      contentType,
    });
    if (!where) return json(404, { error: 'not_found' });
    if (where.endpoint !== 'authorize' && failures.length > 0) return failure(failures.shift()!);
    try {
      if (where.endpoint === 'authorize') {
        if (req.method !== 'GET') return json(405, { error: 'invalid_request' });
        const location = decide(url.toString(), url.searchParams.get('login_hint') || defaultEmail);
        return { status: 302, body: '', headers: { location } };
      }
      if (where.endpoint === 'userinfo') return userinfoEndpoint(req);
      return await tokenEndpoint(where.flavour, req, raw);
    } catch (error) {
      if (error instanceof PageError)
        return { status: 400, body: error.message, headers: { 'content-type': 'text/plain' } };
      if (error instanceof TokenError) return json(error.status, errorBody(where.flavour, error));
      throw error;
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, Buffer.concat(chunks).toString('utf8'))
        .catch((error: Error) =>
          json(500, { error: 'server_error', error_description: `test server error: ${error.message}` }),
        )
        .then((reply) => {
          if (!reply) return;
          res.writeHead(reply.status, reply.headers);
          res.end(reply.body);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
    clients,
    introspectionUrl: `${baseUrl}${INTROSPECT_PATH}`,
    endpoints(flavour) {
      const paths = PATHS[flavour];
      return {
        authorizeUrl: `${baseUrl}${paths.authorize}`,
        tokenUrl: `${baseUrl}${paths.token}`,
        ...(paths.userinfo ? { userinfoUrl: `${baseUrl}${paths.userinfo}` } : {}),
      };
    },
    approve(authorizeUrl, user) {
      return decide(authorizeUrl, user.email);
    },
    deny(authorizeUrl) {
      return decide(authorizeUrl, null);
    },
    tokens: accessTokens,
    isLive(accessToken) {
      const issued = accessTokens.get(accessToken);
      return issued && issued.expiresAt.getTime() > now() ? issued.email : null;
    },
    expireAll() {
      const past = new Date(now() - 1000);
      for (const issued of accessTokens.values()) issued.expiresAt = past;
    },
    revoke(email) {
      for (const stored of refreshTokens.values()) if (stored.email === email) stored.revoked = true;
      for (const [value, issued] of accessTokens) if (issued.email === email) accessTokens.delete(value);
      for (const key of googleGrants) if (key.endsWith(` ${email}`)) googleGrants.delete(key);
    },
    advance(seconds) {
      clockOffsetMs += seconds * 1000;
    },
    failNext(mode, count = 1) {
      for (let i = 0; i < count; i++) failures.push(mode);
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
