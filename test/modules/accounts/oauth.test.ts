// Signing in with Google and Microsoft 365 to connect external accounts, through the API: the start and
// its authorization URL, the callback (single use, expiring, refusals as 4xx), and the account's access
// token afterwards (refreshed once across processes; a revoked grant moves the account to auth_failed
// until it is authorised again). The providers are the local OAuth server; their IMAP server is a
// Dovecot whose oauth2 passdb asks that server's introspection endpoint, so it accepts XOAUTH2 only with
// a live token; their SMTP server is a sink that checks the token the same way.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { Secrets } from '../../../src/core/crypto.ts';
import { AccountAuthError } from '../../../src/modules/accounts/errors.ts';
import type { MailAccountRow } from '../../../src/modules/accounts/tables.ts';
import { engine, eventsOf, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { DOVECOT_MISSING, startDovecot } from '../../support/dovecot.ts';
import { startOAuthServer } from '../../support/oauth-server.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { until } from '../../support/until.ts';

const PUBLIC_URL = 'https://mailroom.test';
const oauth = await startOAuthServer({ redirectUri: `${PUBLIC_URL}/v1/accounts/oauth/callback` });
const dovecot = await startDovecot({ oauth: { introspectionUrl: oauth.introspectionUrl } });
if (!dovecot) await oauth.close();

type Provider = 'google' | 'microsoft';

describe(`OAuth accounts on ${engine}`, { skip: dovecot ? false : DOVECOT_MISSING }, () => {
  const freshOrg = orgMaker('oauth');
  let t: TestApp;
  let smtp: SmtpSink;
  let org: Org;
  let secrets: Secrets;
  const users = ['ada@gmail.test', 'grace@outlook.test', 'alan@gmail.test', 'edsger@gmail.test'];

  before(async () => {
    smtp = await startSmtpSink({ xoauth2: oauth });
    const env: Record<string, string> = { MAILROOM_PUBLIC_URL: PUBLIC_URL };
    for (const provider of ['google', 'microsoft'] as const) {
      const prefix = `MAILROOM_OAUTH_${provider.toUpperCase()}`;
      const endpoints = oauth.endpoints(provider);
      Object.assign(env, {
        [`${prefix}_CLIENT_ID`]: oauth.clients[provider].clientId,
        [`${prefix}_CLIENT_SECRET`]: oauth.clients[provider].clientSecret,
        [`${prefix}_AUTHORIZE_URL`]: endpoints.authorizeUrl,
        [`${prefix}_TOKEN_URL`]: endpoints.tokenUrl,
        ...(endpoints.userinfoUrl ? { [`${prefix}_USERINFO_URL`]: endpoints.userinfoUrl } : {}),
        [`${prefix}_IMAP`]: `127.0.0.1:${dovecot!.imapPort}:none`,
        [`${prefix}_SMTP`]: `127.0.0.1:${smtp.port}:none`,
      });
    }
    t = await startTestApp({ env });
    secrets = new Secrets(Buffer.from(t.env.MAILROOM_SECRET_KEY, 'hex'));
    org = await freshOrg(t);
    for (const user of users) await dovecot!.addUser(user, 'a password nobody uses');
  });
  after(async () => {
    await t?.close();
    await smtp?.close();
    await dovecot?.stop();
    await oauth.close();
  });

  const start = (provider: Provider, body: Record<string, unknown> = {}, as = org) =>
    t.call('POST', `/v1/accounts/oauth/${provider}/start`, { token: as.token, body });
  /** The browser's way back from the provider, as the path and query the callback route sees. */
  const back = (redirect: string) => {
    const url = new URL(redirect);
    assert.equal(url.origin, PUBLIC_URL);
    return `${url.pathname}${url.search}`;
  };
  /** Starts, lets `email` consent at the provider, and follows the redirect to the callback. */
  async function signIn(provider: Provider, email: string, body: Record<string, unknown> = {}) {
    const started = await start(provider, { login_hint: email, ...body });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    return t.call('GET', back(oauth.approve(started.body.url, { email })));
  }
  const refreshes = () =>
    oauth.requests.filter((r) => r.endpoint === 'token' && r.params.grant_type === 'refresh_token').length;
  const tokensOf = async (id: string) => {
    const { rows } = await t.app.database.query<{ secret: string }>(
      'select secret from mail_accounts where id = $1',
      [id],
    );
    return JSON.parse(secrets.decrypt(rows[0].secret)) as Record<string, string>;
  };
  /** Time passes: the stored access token is as good as expired (and the provider says it is). */
  async function expireStoredToken(id: string) {
    const tokens = await tokensOf(id);
    const stale = { ...tokens, expires_at: new Date(Date.now() - 1000).toISOString() };
    await t.app.database.query('update mail_accounts set secret = $1 where id = $2', [
      secrets.encrypt(JSON.stringify(stale)),
      id,
    ]);
    oauth.expireAll();
  }
  const rowOf = (id: string): Promise<MailAccountRow> => t.app.services.accounts.get(org.orgId, id);

  async function imapLogin(user: string, accessToken: string): Promise<boolean> {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: dovecot!.imapPort,
      secure: false,
      doSTARTTLS: false,
      auth: { user, accessToken },
      logger: false,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.logout();
      return true;
    } catch {
      client.close();
      return false;
    }
  }

  test('start answers the authorization URL with PKCE S256 and a state kept only as its hash', async () => {
    const started = await start('google', { login_hint: 'ada@gmail.test' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const url = new URL(started.body.url);
    assert.equal(`${url.origin}${url.pathname}`, oauth.endpoints('google').authorizeUrl);
    const params = Object.fromEntries(url.searchParams);
    assert.equal(params.client_id, oauth.clients.google.clientId);
    assert.equal(params.redirect_uri, `${PUBLIC_URL}/v1/accounts/oauth/callback`);
    assert.equal(params.response_type, 'code');
    assert.equal(params.code_challenge_method, 'S256');
    assert.match(params.code_challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(params.state, started.body.state);
    assert.equal(params.login_hint, 'ada@gmail.test');
    assert.match(params.scope, /https:\/\/mail\.google\.com\//);

    const { rows } = await t.app.database.query<{
      state_hash: string;
      code_verifier: string;
      expires_at: Date;
    }>('select state_hash, code_verifier, expires_at from account_oauth_requests');
    const row = rows.find(
      (r) => r.state_hash === createHash('sha256').update(started.body.state).digest('hex'),
    );
    assert.ok(row, 'the request is kept by the hash of its state');
    assert.ok(!JSON.stringify(rows).includes(started.body.state), 'the state itself is not stored');
    // The verifier is sealed, and it is the one the challenge was made from.
    const verifier = secrets.decrypt(row.code_verifier);
    assert.equal(createHash('sha256').update(verifier).digest('base64url'), params.code_challenge);
    const ttl = new Date(row.expires_at).getTime() - Date.now();
    assert.ok(ttl > 9 * 60_000 && ttl <= 10 * 60_000, `expires in ${ttl} ms`);

    const microsoft = new URL((await start('microsoft')).body.url);
    assert.equal(`${microsoft.origin}${microsoft.pathname}`, oauth.endpoints('microsoft').authorizeUrl);
    assert.match(microsoft.searchParams.get('scope')!, /IMAP\.AccessAsUser\.All .*SMTP\.Send offline_access/);

    const elsewhere = await start('google', { redirect_to: 'https://evil.test/phish' });
    assert.equal(elsewhere.status, 422, JSON.stringify(elsewhere.body));
    assert.equal(elsewhere.body.errors[0].field, 'redirect_to');
    const sneaky = await start('google', { redirect_to: '//evil.test/phish' });
    assert.equal(sneaky.status, 422);
  });

  test('the callback logs in with XOAUTH2, connects the account with its tokens sealed, once', async () => {
    const introspections = oauth.requests.filter((r) => r.endpoint === 'introspect').length;
    const started = await start('google', { login_hint: 'ada@gmail.test', name: 'Ada at Gmail' });
    const callback = back(oauth.approve(started.body.url, { email: 'ada@gmail.test' }));
    const connected = await t.call('GET', callback);
    assert.equal(connected.status, 201, JSON.stringify(connected.body));
    const account = connected.body;
    assert.equal(account.provider, 'google');
    assert.equal(account.address, 'ada@gmail.test');
    assert.equal(account.username, 'ada@gmail.test');
    assert.equal(account.name, 'Ada at Gmail');
    assert.equal(account.state, 'connecting');
    assert.deepEqual(account.imap, {
      host: '127.0.0.1',
      port: dovecot!.imapPort,
      security: 'none',
      verify_tls: true,
    });
    assert.equal(account.smtp.port, smtp.port);
    // Dovecot asked the provider about the token; the SMTP server took it too.
    assert.ok(oauth.requests.filter((r) => r.endpoint === 'introspect').length > introspections);
    assert.deepEqual(smtp.logins.at(-1), { username: 'ada@gmail.test', ok: true });

    const sealed = await tokensOf(account.id);
    assert.deepEqual(Object.keys(sealed).sort(), ['access_token', 'expires_at', 'refresh_token']);
    assert.equal(oauth.isLive(sealed.access_token), 'ada@gmail.test');
    const { rows } = await t.app.database.query<{ secret: string }>(
      'select secret from mail_accounts where id = $1',
      [account.id],
    );
    assert.ok(
      !rows[0].secret.includes(sealed.access_token) && !rows[0].secret.includes(sealed.refresh_token),
    );

    const events = await eventsOf(t, org, 'account.connected');
    assert.ok(events.some((e) => e.data.account_id === account.id && e.data.provider === 'google'));

    const again = await t.call('GET', callback);
    assert.equal(again.status, 400, JSON.stringify(again.body));
    assert.equal(again.body.code, 'oauth_state_invalid');

    const duplicate = await signIn('google', 'ada@gmail.test');
    assert.equal(duplicate.status, 409, JSON.stringify(duplicate.body));

    const microsoft = await signIn('microsoft', 'grace@outlook.test');
    assert.equal(microsoft.status, 201, JSON.stringify(microsoft.body));
    assert.equal(microsoft.body.provider, 'microsoft');
    assert.equal(microsoft.body.address, 'grace@outlook.test');

    // A user Dovecot does not know: the token is live, the login is not; nothing is saved.
    const stranger = await signIn('google', 'nobody@gmail.test');
    assert.equal(stranger.status, 422, JSON.stringify(stranger.body));
    assert.equal(stranger.body.code, 'connection_failed');
    assert.equal(stranger.body.diagnosis.stage, 'login');
    const list = await t.call('GET', '/v1/accounts', { token: org.token });
    assert.ok(!list.body.items.some((a: { address: string }) => a.address === 'nobody@gmail.test'));
  });

  test('refused callbacks are 4xx problems: declined, expired, another provider’s code, no state', async () => {
    const declined = await start('google', { login_hint: 'alan@gmail.test' });
    const denied = await t.call('GET', back(oauth.deny(declined.body.url)));
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(denied.body.code, 'oauth_access_denied');
    assert.match(String(denied.headers['content-type']), /application\/problem\+json/);

    const late = await start('google', { login_hint: 'alan@gmail.test' });
    const lateCallback = back(oauth.approve(late.body.url, { email: 'alan@gmail.test' }));
    await t.app.database.query(
      "update account_oauth_requests set expires_at = now() - interval '1 second' where state_hash = $1",
      [createHash('sha256').update(late.body.state).digest('hex')],
    );
    const expired = await t.call('GET', lateCallback);
    assert.equal(expired.status, 400, JSON.stringify(expired.body));
    assert.equal(expired.body.code, 'oauth_state_expired');

    // Google's state with a code Microsoft issued: Google refuses the code.
    const google = await start('google', { login_hint: 'alan@gmail.test' });
    const microsoft = await start('microsoft', { login_hint: 'alan@gmail.test' });
    const microsoftCode = new URL(
      oauth.approve(microsoft.body.url, { email: 'alan@gmail.test' }),
    ).searchParams.get('code')!;
    const mixed = await t.call(
      'GET',
      `/v1/accounts/oauth/callback?code=${encodeURIComponent(microsoftCode)}&state=${google.body.state}`,
    );
    assert.equal(mixed.status, 400, JSON.stringify(mixed.body));
    assert.equal(mixed.body.code, 'oauth_code_invalid');

    for (const query of ['?code=abc&state=never-issued', '?code=abc', '', '?error=access_denied']) {
      const res = await t.call('GET', `/v1/accounts/oauth/callback${query}`);
      assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
    }
    const list = await t.call('GET', '/v1/accounts', { token: org.token });
    assert.ok(!list.body.items.some((a: { address: string }) => a.address === 'alan@gmail.test'));
  });

  test('with redirect_to, the callback sends the browser back there, with the outcome', async () => {
    const declined = await start('google', { login_hint: 'alan@gmail.test', redirect_to: '/app/accounts' });
    const denied = await t.call('GET', back(oauth.deny(declined.body.url)));
    assert.equal(denied.status, 303);
    const deniedTo = new URL(String(denied.headers.location));
    assert.equal(`${deniedTo.origin}${deniedTo.pathname}`, `${PUBLIC_URL}/app/accounts`);
    assert.equal(deniedTo.searchParams.get('error'), 'oauth_access_denied');

    const connected = await signIn('google', 'alan@gmail.test', {
      redirect_to: `${PUBLIC_URL}/app?tab=mail`,
    });
    assert.equal(connected.status, 303, JSON.stringify(connected.body));
    const to = new URL(String(connected.headers.location));
    assert.equal(to.searchParams.get('tab'), 'mail');
    assert.equal(to.searchParams.get('status'), 'connected');
    const account = await t.call('GET', `/v1/accounts/${to.searchParams.get('account_id')}`, {
      token: org.token,
    });
    assert.equal(account.body.address, 'alan@gmail.test');
  });

  test('credentials() gives a token that logs in to IMAP with XOAUTH2', async () => {
    const created = await signIn('google', 'edsger@gmail.test');
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const credentials = await t.app.services.accounts.credentials(await rowOf(created.body.id));
    assert.ok('accessToken' in credentials);
    assert.equal(credentials.username, 'edsger@gmail.test');
    assert.equal(await imapLogin('edsger@gmail.test', credentials.accessToken), true);
    // Dovecot accepts nothing else: another user's name, a made-up token.
    assert.equal(await imapLogin('ada@gmail.test', credentials.accessToken), false);
    assert.equal(await imapLogin('edsger@gmail.test', 'ya29.made-up'), false);
  });

  test('an expired token is refreshed exactly once, however many callers ask at once', async () => {
    const { id } = (await t.call('GET', '/v1/accounts?page_size=100', { token: org.token })).body.items.find(
      (a: { address: string }) => a.address === 'edsger@gmail.test',
    );
    await expireStoredToken(id);
    const stale = await rowOf(id);
    const before = refreshes();
    // With PostgreSQL, a second process on the same database asks as well.
    const other =
      engine === 'postgres'
        ? await startTestApp({ databaseUrl: t.env.DATABASE_URL, env: { ...t.env } })
        : null;
    try {
      const services = [t.app.services.accounts, (other ?? t).app.services.accounts];
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => services[i % 2].credentials(stale)),
      );
      assert.equal(refreshes() - before, 1, 'one refresh request reached the provider');
      const tokens = new Set(results.map((r) => ('accessToken' in r ? r.accessToken : '')));
      assert.equal(tokens.size, 1, 'every caller got the refreshed token');
      const [token] = tokens;
      assert.equal(oauth.isLive(token), 'edsger@gmail.test');
      assert.equal((await tokensOf(id)).access_token, token);
      assert.equal(await imapLogin('edsger@gmail.test', token), true);
      // Fresh now: no further refresh.
      await t.app.services.accounts.credentials(await rowOf(id));
      assert.equal(refreshes() - before, 1);
    } finally {
      await other?.close();
    }
  });

  test('a revoked grant moves the account to auth_failed; authorising it again lifts it', async () => {
    const { id } = (await t.call('GET', '/v1/accounts?page_size=100', { token: org.token })).body.items.find(
      (a: { address: string }) => a.address === 'grace@outlook.test',
    );
    oauth.revoke('grace@outlook.test');
    await expireStoredToken(id);
    const before = refreshes();
    await assert.rejects(t.app.services.accounts.credentials(await rowOf(id)), (err: unknown) => {
      assert.ok(err instanceof AccountAuthError, String(err));
      assert.equal(err.accountId, id);
      assert.equal(err.code, 'account_auth_failed');
      assert.match(err.message, /authorised again/);
      return true;
    });
    const failed = await t.call('GET', `/v1/accounts/${id}`, { token: org.token });
    assert.equal(failed.body.state, 'auth_failed');
    assert.match(failed.body.last_error, /invalid_grant/);
    assert.ok(failed.body.last_error_at);
    const announced = (await eventsOf(t, org, 'account.auth_failed')).filter((e) => e.data.account_id === id);
    assert.equal(announced.length, 1);
    assert.equal(announced[0].data.provider, 'microsoft');

    // Known to be refused: no request to the provider, no second event.
    await assert.rejects(t.app.services.accounts.credentials(await rowOf(id)), AccountAuthError);
    assert.equal(refreshes() - before, 1);
    assert.equal(
      (await eventsOf(t, org, 'account.auth_failed')).filter((e) => e.data.account_id === id).length,
      1,
    );

    // Another organisation cannot re-authorise it; signing in as someone else does not renew it.
    const stranger = await freshOrg(t);
    const foreign = await t.call('POST', `/v1/accounts/${id}/oauth/start`, { token: stranger.token });
    assert.equal(foreign.status, 404);
    const wrong = await t.call('POST', `/v1/accounts/${id}/oauth/start`, { token: org.token });
    const mismatch = await t.call('GET', back(oauth.approve(wrong.body.url, { email: 'ada@gmail.test' })));
    assert.equal(mismatch.status, 409, JSON.stringify(mismatch.body));
    assert.equal(mismatch.body.code, 'oauth_account_mismatch');

    const again = await t.call('POST', `/v1/accounts/${id}/oauth/start`, { token: org.token });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(new URL(again.body.url).searchParams.get('login_hint'), 'grace@outlook.test');
    const renewed = await t.call('GET', back(oauth.approve(again.body.url, { email: 'grace@outlook.test' })));
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.equal(renewed.body.id, id);
    assert.equal(renewed.body.state, 'connecting');
    assert.equal(renewed.body.last_error, null);
    const updated = (await eventsOf(t, org, 'account.updated')).find((e) => e.data.account_id === id);
    assert.deepEqual(updated.data.changes, ['authorization', 'state']);

    const credentials = await t.app.services.accounts.credentials(await rowOf(id));
    assert.ok('accessToken' in credentials);
    assert.equal(oauth.isLive(credentials.accessToken), 'grace@outlook.test');
    assert.equal(await imapLogin('grace@outlook.test', credentials.accessToken), true);
  });

  test('a password account cannot be re-authorised with OAuth', async () => {
    await dovecot!.addUser('linus@company.test', 'the company password');
    const created = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: {
        address: 'linus@company.test',
        password: 'the company password',
        imap: { host: '127.0.0.1', port: dovecot!.imapPort, security: 'none' },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const refused = await t.call('POST', `/v1/accounts/${created.body.id}/oauth/start`, { token: org.token });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'not_oauth_account');
    const credentials = await t.app.services.accounts.credentials(await rowOf(created.body.id));
    assert.deepEqual(credentials, { username: 'linus@company.test', password: 'the company password' });
  });
  test('a signed-in account syncs over XOAUTH2, sends through its provider, and stops when the grant is revoked', async () => {
    // A process that runs the workers, as `mailroom start` does.
    const env = { ...t.env };
    delete env.MAILROOM_DATA_DIR;
    delete env.DATABASE_URL;
    const w = await startTestApp({ env: { ...env, MAILROOM_ACCOUNTS_LEASE_SECONDS: '3' }, workers: true });
    try {
      const as = await orgMaker('oauth-sync')(w);
      const user = 'barbara@gmail.test';
      await dovecot!.addUser(user, 'a password nobody uses');
      await dovecot!.deliver(
        user,
        `From: x@elsewhere.test\r\nSubject: before\r\nMessage-ID: <b1@elsewhere.test>\r\n\r\nHi\r\n`,
      );
      const started = await w.call('POST', '/v1/accounts/oauth/google/start', { token: as.token, body: {} });
      const connected = await w.call('GET', back(oauth.approve(started.body.url, { email: user })));
      assert.equal(connected.status, 201, JSON.stringify(connected.body));
      const id = connected.body.id;
      const get = () => w.call('GET', `/v1/accounts/${id}`, { token: as.token }).then((r) => r.body);
      await until(get, (a) => a.state === 'ready');
      const synced = await w.call('GET', `/v1/accounts/${id}/messages`, { token: as.token });
      assert.deepEqual(
        synced.body.items.map((m: { subject: string }) => m.subject),
        ['before'],
      );

      // Its login and servers come from the provider: a password or server change is refused.
      const patched = await w.call('PATCH', `/v1/accounts/${id}`, {
        token: as.token,
        body: { password: 'x' },
      });
      assert.equal(patched.status, 409, JSON.stringify(patched.body));
      assert.equal(patched.body.code, 'oauth_account');

      const logins = smtp.logins.length;
      const sent = await w.call('POST', `/v1/accounts/${id}/send`, {
        token: as.token,
        body: { to: ['someone@elsewhere.test'], subject: 'Hello', text: 'From Gmail.' },
      });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      assert.equal(sent.body.sent_folder, null, 'Gmail keeps its own copy of what its SMTP sends');
      assert.deepEqual(smtp.logins.slice(logins), [{ username: user, ok: true }]);
      assert.ok(smtp.messages.some((m) => m.raw.toString().includes('Subject: Hello')));

      // The provider ends the access token before its time: the next login gets a new one and goes on.
      const refreshed = refreshes();
      oauth.expireAll();
      await dovecot!.doveadm(['kick', user]);
      await until(
        async () => ({ refreshes: refreshes(), account: await get() }),
        (r) => r.refreshes > refreshed && r.account.state === 'ready',
        20_000,
      );
      await dovecot!.deliver(
        user,
        `From: x@elsewhere.test\r\nSubject: after\r\nMessage-ID: <b2@elsewhere.test>\r\n\r\nHi\r\n`,
      );
      await until(
        () =>
          w.call('GET', `/v1/accounts/${id}/messages`, { token: as.token }).then((r) => r.body.items.length),
        (n) => n === 2,
        20_000,
      );
      assert.equal((await eventsOf(w, as, 'account.auth_failed')).length, 0);

      // The grant is revoked and the token runs out: the next login fails for good.
      oauth.revoke(user);
      oauth.expireAll();
      const tokens = JSON.parse(
        secrets.decrypt(
          (
            await w.app.database.query<{ secret: string }>('select secret from mail_accounts where id = $1', [
              id,
            ])
          ).rows[0].secret,
        ),
      );
      await w.app.database.query('update mail_accounts set secret = $1 where id = $2', [
        secrets.encrypt(JSON.stringify({ ...tokens, expires_at: new Date(0).toISOString() })),
        id,
      ]);
      await w.app.services.accountMail.requestSync(as.orgId, id).catch(() => {});
      await dovecot!.doveadm(['kick', user]);
      await until(get, (a) => a.state === 'auth_failed', 20_000);
      const failed = await eventsOf(w, as, 'account.auth_failed');
      assert.equal(failed.filter((e) => e.data.account_id === id).length, 1);
    } finally {
      await w.close();
    }
  });
});
