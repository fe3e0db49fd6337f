// The OAuth 2.0 client for Google and Microsoft mail accounts against a local server that keeps both
// providers' documented contract: the authorization URL, the code exchange with PKCE, refreshing,
// each kind of refusal as the caller sees it, and the SASL strings that carry the token to IMAP/SMTP.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { codeChallenge } from '../../src/providers/oauth/client.ts';
import { OAuthError, type OAuthFailure } from '../../src/providers/oauth/errors.ts';
import { DEFAULT_ENDPOINTS, DEFAULT_SCOPES, OAUTH_PROVIDERS } from '../../src/providers/oauth/providers.ts';
import { oauthbearer, xoauth2 } from '../../src/providers/oauth/sasl.ts';
import type { OAuthClientConfig, OAuthProviderName } from '../../src/providers/oauth/types.ts';
import { type OAuthServer, startOAuthServer } from '../support/oauth-server.ts';

const UNRESERVED = /^[A-Za-z0-9\-._~]{43,128}$/;

let server: OAuthServer;

before(async () => {
  server = await startOAuthServer();
});

after(() => server.close());

function configFor(name: OAuthProviderName, overrides: Partial<OAuthClientConfig> = {}): OAuthClientConfig {
  return {
    ...server.clients[name],
    endpoints: server.endpoints(name),
    scopes: DEFAULT_SCOPES[name],
    ...overrides,
  };
}

/** A user approves a fresh authorization request as `email`: the code and the verifier to redeem it. */
function authorize(name: OAuthProviderName, email: string, config = configFor(name)) {
  const request = OAUTH_PROVIDERS[name].authorizationRequest(config, { loginHint: email });
  const callback = new URL(server.approve(request.url, { email }));
  assert.equal(callback.origin + callback.pathname, config.redirectUri);
  assert.equal(callback.searchParams.get('state'), request.state);
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${callback}`);
  return { code, codeVerifier: request.codeVerifier, config };
}

async function connect(name: OAuthProviderName, email: string, config = configFor(name)) {
  const { code, codeVerifier } = authorize(name, email, config);
  return OAUTH_PROVIDERS[name].exchangeCode(config, code, codeVerifier);
}

/** Asserts an OAuthError of `reason` whose message leaks none of `secrets`. */
async function rejectsWith(
  promise: Promise<unknown>,
  reason: OAuthFailure,
  secrets: string[],
  message?: RegExp,
): Promise<OAuthError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OAuthError, `expected an OAuthError, got ${error}`);
    assert.equal(error.reason, reason, error.message);
    if (message) assert.match(error.message, message);
    for (const secret of secrets)
      assert.ok(!error.message.includes(secret), 'a secret leaked into the message');
    return error;
  }
  assert.fail(`expected ${reason}`);
}

/** A loopback URL nobody listens on any more. */
async function deadUrl(): Promise<string> {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  return `http://127.0.0.1:${port}/token`;
}

describe('authorization URL', () => {
  test('Google asks for offline access with consent, PKCE S256 and the mail scope', () => {
    const config = configFor('google');
    const request = OAUTH_PROVIDERS.google.authorizationRequest(config, { loginHint: 'ada@gmail.com' });
    const url = new URL(request.url);
    assert.equal(url.origin + url.pathname, config.endpoints.authorizeUrl);
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      access_type: 'offline',
      prompt: 'consent',
      client_id: config.clientId,
      redirect_uri: config.redirectUri,
      response_type: 'code',
      scope: 'https://mail.google.com/ openid email',
      state: request.state,
      code_challenge: codeChallenge(request.codeVerifier),
      code_challenge_method: 'S256',
      login_hint: 'ada@gmail.com',
    });
    assert.match(request.codeVerifier, UNRESERVED);
    assert.match(request.state, /^[A-Za-z0-9_-]{32}$/);

    const again = OAUTH_PROVIDERS.google.authorizationRequest(config);
    assert.notEqual(again.state, request.state);
    assert.notEqual(again.codeVerifier, request.codeVerifier);
    assert.equal(new URL(again.url).searchParams.has('login_hint'), false);
  });

  test('Microsoft asks for the query response mode and offline_access; extras cannot replace the flow', () => {
    const config = configFor('microsoft');
    const request = OAUTH_PROVIDERS.microsoft.authorizationRequest(config, {
      extra: { prompt: 'select_account' },
    });
    const params = new URL(request.url).searchParams;
    assert.equal(params.get('response_mode'), 'query');
    assert.equal(params.get('prompt'), 'select_account');
    assert.equal(params.has('access_type'), false);
    assert.equal(
      params.get('scope'),
      'https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid email profile',
    );
    assert.equal(params.get('code_challenge'), codeChallenge(request.codeVerifier));
    // RFC 7636 appendix B.
    assert.equal(
      codeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
    assert.throws(
      () => OAUTH_PROVIDERS.microsoft.authorizationRequest(config, { extra: { state: 'mine' } }),
      /state is set by the OAuth flow/,
    );
  });

  test('the defaults are the providers’ documented endpoints', () => {
    assert.deepEqual(DEFAULT_ENDPOINTS.google, {
      authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
      tokenUrl: 'https://oauth2.googleapis.com/token',
      userinfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
    });
    assert.deepEqual(DEFAULT_ENDPOINTS.microsoft, {
      authorizeUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
      tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    });
  });

  test('the server refuses a request without PKCE back at the redirect URI, and a denial too', () => {
    const config = configFor('google');
    const request = OAUTH_PROVIDERS.google.authorizationRequest(config);
    const plain = new URL(request.url);
    plain.searchParams.set('code_challenge_method', 'plain');
    const refused = new URL(server.approve(plain.toString(), { email: 'ada@gmail.com' }));
    assert.equal(refused.searchParams.get('error'), 'invalid_request');
    assert.equal(refused.searchParams.get('state'), request.state);
    assert.equal(refused.searchParams.has('code'), false);

    const denied = new URL(server.deny(request.url));
    assert.equal(denied.searchParams.get('error'), 'access_denied');
  });
});

describe('code exchange', () => {
  test('Google: approve, exchange, and the tokens are live for the address in the id_token', async () => {
    const before = Date.now();
    const tokens = await connect('google', 'ada@gmail.com');
    assert.equal(tokens.email, 'ada@gmail.com');
    assert.match(tokens.refreshToken ?? '', /^1\/\/0/);
    assert.equal(tokens.scope, 'https://mail.google.com/ openid email');
    assert.ok(
      tokens.expiresAt.getTime() >= before + 3600_000 && tokens.expiresAt.getTime() <= Date.now() + 3600_000,
    );
    assert.equal(decodeJwt(tokens.idToken!).email, 'ada@gmail.com');
    assert.equal(server.isLive(tokens.accessToken), 'ada@gmail.com');

    const sent = server.requests.findLast((r) => r.flavour === 'google' && r.endpoint === 'token');
    assert.equal(sent?.contentType, 'application/x-www-form-urlencoded');
    assert.equal(sent?.params.grant_type, 'authorization_code');
    assert.equal(sent?.params.client_secret, server.clients.google.clientSecret);
    assert.equal(sent?.params.redirect_uri, server.clients.google.redirectUri);
    assert.match(sent?.params.code_verifier ?? '', UNRESERVED);
  });

  test('Google: following the 302 of the authorization endpoint works as well', async () => {
    const config = configFor('google');
    const request = OAUTH_PROVIDERS.google.authorizationRequest(config, { loginHint: 'grace@gmail.com' });
    const answer = await fetch(request.url, { redirect: 'manual' });
    assert.equal(answer.status, 302);
    const callback = new URL(answer.headers.get('location')!);
    assert.equal(callback.searchParams.get('state'), request.state);
    const tokens = await OAUTH_PROVIDERS.google.exchangeCode(
      config,
      callback.searchParams.get('code')!,
      request.codeVerifier,
    );
    assert.equal(tokens.email, 'grace@gmail.com');
  });

  test('Google without openid reads the address from userinfo', async () => {
    const config = configFor('google', { scopes: ['https://mail.google.com/', 'email'] });
    const tokens = await connect('google', 'linus@gmail.com', config);
    assert.equal(tokens.idToken, null);
    assert.equal(tokens.email, 'linus@gmail.com');
    const asked = server.requests.findLast((r) => r.endpoint === 'userinfo');
    assert.equal(asked?.authorization, `Bearer ${tokens.accessToken}`);
  });

  test('Google gives a refresh token without prompt=consent only on the first grant', async () => {
    const config = configFor('google');
    const withoutConsent = (email: string) => {
      const request = OAUTH_PROVIDERS.google.authorizationRequest(config, {
        extra: { prompt: 'select_account' },
      });
      const code = new URL(server.approve(request.url, { email })).searchParams.get('code')!;
      return OAUTH_PROVIDERS.google.exchangeCode(config, code, request.codeVerifier);
    };
    assert.ok((await withoutConsent('new@gmail.com')).refreshToken);
    assert.equal((await withoutConsent('new@gmail.com')).refreshToken, null);
  });

  test('Microsoft: the address from the email claim, else preferred_username; no offline_access, no refresh token', async () => {
    const tokens = await connect('microsoft', 'ada@contoso.com');
    assert.equal(tokens.email, 'ada@contoso.com');
    assert.ok(tokens.refreshToken);
    assert.equal(server.isLive(tokens.accessToken), 'ada@contoso.com');

    const withoutEmail = configFor('microsoft', {
      scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All', 'openid', 'profile'],
    });
    const fromUsername = await connect('microsoft', 'grace@contoso.com', withoutEmail);
    assert.equal(decodeJwt(fromUsername.idToken!).email, undefined);
    assert.equal(fromUsername.email, 'grace@contoso.com');
    assert.equal(fromUsername.refreshToken, null);
  });

  test('a wrong verifier is invalid_grant and spends the code', async () => {
    const { code, codeVerifier, config } = authorize('google', 'ada@gmail.com');
    const wrong = 'x'.repeat(43);
    const error = await rejectsWith(
      OAUTH_PROVIDERS.google.exchangeCode(config, code, wrong),
      'invalid_grant',
      [code, wrong, config.clientSecret],
      /^Google refused the authorization code: invalid_grant \(Invalid code verifier\.\)/,
    );
    assert.equal(error.code, 'provider_auth_failed');
    assert.equal(error.oauthError, 'invalid_grant');
    assert.equal(error.retryable, false);
    await rejectsWith(OAUTH_PROVIDERS.google.exchangeCode(config, code, codeVerifier), 'invalid_grant', [
      code,
    ]);
  });

  test('a code is single use and lives 60 s (Microsoft, with its AADSTS numbers)', async () => {
    const { code, codeVerifier, config } = authorize('microsoft', 'ada@contoso.com');
    await OAUTH_PROVIDERS.microsoft.exchangeCode(config, code, codeVerifier);
    const reused = await rejectsWith(
      OAUTH_PROVIDERS.microsoft.exchangeCode(config, code, codeVerifier),
      'invalid_grant',
      [code, codeVerifier, config.clientSecret],
      /AADSTS54005: OAuth2 Authorization code was already redeemed/,
    );
    assert.doesNotMatch(reused.message, /Trace ID/);

    const late = authorize('microsoft', 'ada@contoso.com');
    server.advance(61);
    await rejectsWith(
      OAUTH_PROVIDERS.microsoft.exchangeCode(late.config, late.code, late.codeVerifier),
      'invalid_grant',
      [late.code],
      /AADSTS70008/,
    );
  });

  test('a wrong client secret or a changed redirect URI is invalid_client', async () => {
    const { code, codeVerifier, config } = authorize('google', 'ada@gmail.com');
    const badSecret = { ...config, clientSecret: 'GOCSPX-not-the-secret' };
    await rejectsWith(
      OAUTH_PROVIDERS.google.exchangeCode(badSecret, code, codeVerifier),
      'invalid_client',
      [code, codeVerifier, badSecret.clientSecret],
      /invalid_client \(Unauthorized\); check the OAuth client ID, secret and redirect URI$/,
    );
    const moved = { ...config, redirectUri: 'https://elsewhere.test/callback' };
    const error = await rejectsWith(
      OAUTH_PROVIDERS.google.exchangeCode(moved, code, codeVerifier),
      'invalid_client',
      [code],
    );
    assert.equal(error.oauthError, 'redirect_uri_mismatch');
  });
});

describe('refresh', () => {
  test('Google: a new live access token, and the old refresh token is kept', async () => {
    const tokens = await connect('google', 'ada@gmail.com');
    server.expireAll();
    assert.equal(server.isLive(tokens.accessToken), null);

    const refreshed = await OAUTH_PROVIDERS.google.refresh(configFor('google'), tokens.refreshToken!);
    assert.equal(refreshed.refreshToken, tokens.refreshToken);
    assert.notEqual(refreshed.accessToken, tokens.accessToken);
    assert.equal(server.isLive(refreshed.accessToken), 'ada@gmail.com');
    const sent = server.requests.findLast((r) => r.endpoint === 'token');
    assert.deepEqual(Object.keys(sent?.params ?? {}).sort(), [
      'client_id',
      'client_secret',
      'grant_type',
      'refresh_token',
    ]);
  });

  test('Microsoft: the rotated refresh token is the one returned', async () => {
    const tokens = await connect('microsoft', 'ada@contoso.com');
    const refreshed = await OAUTH_PROVIDERS.microsoft.refresh(configFor('microsoft'), tokens.refreshToken!);
    assert.ok(refreshed.refreshToken);
    assert.notEqual(refreshed.refreshToken, tokens.refreshToken);
    assert.equal(server.isLive(refreshed.accessToken), 'ada@contoso.com');
    const again = await OAUTH_PROVIDERS.microsoft.refresh(configFor('microsoft'), refreshed.refreshToken);
    assert.equal(server.isLive(again.accessToken), 'ada@contoso.com');
  });

  test('after the user revokes access, refreshing is invalid_grant and the access token is dead', async () => {
    for (const name of ['google', 'microsoft'] as const) {
      const email = `revoked@${name}.example`;
      const tokens = await connect(name, email);
      server.revoke(email);
      assert.equal(server.isLive(tokens.accessToken), null);
      const error = await rejectsWith(
        OAUTH_PROVIDERS[name].refresh(configFor(name), tokens.refreshToken!),
        'invalid_grant',
        [tokens.refreshToken!, server.clients[name].clientSecret],
        /the account must be authorised again$/,
      );
      assert.equal(error.code, 'provider_auth_failed');
    }
  });
});

describe('unreliable providers', () => {
  test('a provider nobody answers for is unavailable and retryable', async () => {
    const config = configFor('google', {
      endpoints: { ...server.endpoints('google'), tokenUrl: await deadUrl() },
    });
    const error = await rejectsWith(
      OAUTH_PROVIDERS.google.refresh(config, 'a-refresh-token'),
      'unavailable',
      ['a-refresh-token', config.clientSecret],
      /^Google could not be reached \(the refresh token\): ECONNREFUSED$/,
    );
    assert.equal(error.retryable, true);
    assert.equal(error.code, 'provider_unavailable');
  });

  test('a provider that does not answer in time is unavailable', async () => {
    server.failNext('hang');
    await rejectsWith(
      OAUTH_PROVIDERS.microsoft.refresh(configFor('microsoft'), 'a-refresh-token', { timeoutMs: 100 }),
      'unavailable',
      [],
      /did not answer the refresh token within 0.1 s/,
    );
  });

  test('5xx is unavailable and 429 a rate limit with its Retry-After, both retryable', async () => {
    const tokens = await connect('google', 'ada@gmail.com');
    server.failNext('unavailable');
    await rejectsWith(
      OAUTH_PROVIDERS.google.refresh(configFor('google'), tokens.refreshToken!),
      'unavailable',
      [],
      /HTTP 503/,
    );
    server.failNext('rate_limited');
    const limited = await rejectsWith(
      OAUTH_PROVIDERS.google.refresh(configFor('google'), tokens.refreshToken!),
      'rate_limited',
      [],
    );
    assert.equal(limited.retryAfterSeconds, 7);
    assert.equal(limited.retryable, true);
  });

  test('cut-off JSON or a success without an access token is malformed, not retryable', async () => {
    const { code, codeVerifier, config } = authorize('google', 'ada@gmail.com');
    server.failNext('malformed');
    const error = await rejectsWith(
      OAUTH_PROVIDERS.google.exchangeCode(config, code, codeVerifier),
      'malformed',
      [code],
      /not JSON/,
    );
    assert.equal(error.retryable, false);
    server.failNext('incomplete');
    await rejectsWith(
      OAUTH_PROVIDERS.microsoft.refresh(configFor('microsoft'), 'a-refresh-token'),
      'malformed',
      [],
      /without a valid access token/,
    );
  });
});

describe('SASL', () => {
  test('XOAUTH2 matches the example of Google’s XOAUTH2 documentation', () => {
    assert.equal(
      xoauth2('someuser@example.com', 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg'),
      'dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==',
    );
  });

  test('OAUTHBEARER matches the IMAP example of RFC 7628 §4.1 and escapes the GS2 authzid', () => {
    assert.equal(
      oauthbearer(
        'user@example.com',
        'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==',
        'server.example.com',
        143,
      ),
      'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB',
    );
    const decoded = Buffer.from(oauthbearer('a,b=c@example.com', 't0k', 'imap.example.com', 993), 'base64');
    assert.equal(
      decoded.toString(),
      'n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer t0k\x01\x01',
    );
  });

  test('a token or user that would break the framing is refused without being repeated', () => {
    assert.throws(
      () => xoauth2('ada@example.com', 'secret\x01token'),
      (error: Error) => !error.message.includes('secret'),
    );
    assert.throws(() => xoauth2('ada@example.com\x01auth=x', 'token'), TypeError);
    assert.throws(() => oauthbearer('ada@example.com', 'token', 'imap.example.com', 0), TypeError);
  });
});
