import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { signUp, startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp({ workers: true });
});
after(() => t.close());

const PASSWORD = 'correct horse battery staple';

function totp(secret: string, offsetSteps = 0): string {
  const gen = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
  return gen.generate({ timestamp: Date.now() + offsetSteps * 30_000 });
}

describe('registration and login', () => {
  it('registers, normalises the email, and signs in', async () => {
    const reg = await t.call('POST', '/v1/auth/register', {
      body: { email: '  Alice@Example.COM ', password: PASSWORD, name: 'Alice' },
    });
    assert.equal(reg.status, 201);
    assert.equal(reg.body.user.email, 'alice@example.com');
    assert.equal(reg.body.user.email_verified, false);
    assert.ok(!('password_hash' in reg.body.user));

    const me = await t.call('GET', '/v1/auth/me', { token: reg.body.tokens.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.body.name, 'Alice');

    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: 'ALICE@example.com', password: PASSWORD },
    });
    assert.equal(login.status, 200);
    assert.equal(login.body.token_type, 'Bearer');
    assert.ok(login.body.refresh_token.startsWith('mrr_'));
  });

  it('stores an argon2id hash, never the password', async () => {
    const { rows } = await t.app.database.query<{ password_hash: string }>(
      "select password_hash from users where email = 'alice@example.com'",
    );
    assert.match(rows[0].password_hash, /^\$argon2id\$/);
  });

  it('refuses duplicates, weak passwords and wrong credentials', async () => {
    const dup = await t.call('POST', '/v1/auth/register', {
      body: { email: 'alice@example.com', password: PASSWORD },
    });
    assert.equal(dup.status, 409);
    const weak = await t.call('POST', '/v1/auth/register', {
      body: { email: 'weak@example.com', password: 'short' },
    });
    assert.equal(weak.status, 422);
    assert.equal(weak.body.errors[0].field, 'body.password');
    const wrong = await t.call('POST', '/v1/auth/login', {
      body: { email: 'alice@example.com', password: 'nope nope nope' },
    });
    assert.equal(wrong.status, 401);
    const unknown = await t.call('POST', '/v1/auth/login', {
      body: { email: 'ghost@example.com', password: PASSWORD },
    });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.detail, wrong.body.detail, 'unknown accounts look like wrong passwords');
  });

  it('records failed logins as security events visible to the user', async () => {
    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: 'alice@example.com', password: PASSWORD },
    });
    const events = await t.call('GET', '/v1/auth/security-events?kind=login_failed', {
      token: login.body.access_token,
    });
    assert.equal(events.status, 200);
    assert.ok(events.body.total >= 1);
    assert.equal(events.body.items[0].kind, 'login_failed');
    assert.equal(events.body.items[0].details.reason, 'password');
  });
});

describe('sessions and refresh tokens', () => {
  it('rotates refresh tokens and revokes the family when a spent one comes back', async () => {
    const user = await signUp(t, 'rotate@example.com');
    const first = user.tokens.refresh_token;
    const r1 = await t.call('POST', '/v1/auth/refresh', { body: { refresh_token: first } });
    assert.equal(r1.status, 200);
    assert.notEqual(r1.body.refresh_token, first);
    assert.equal(r1.body.session_id, user.tokens.session_id);

    const r2 = await t.call('POST', '/v1/auth/refresh', { body: { refresh_token: r1.body.refresh_token } });
    assert.equal(r2.status, 200);

    // Replaying the first (spent) token ends the session, including the newest tokens.
    const replay = await t.call('POST', '/v1/auth/refresh', { body: { refresh_token: first } });
    assert.equal(replay.status, 401);
    const after = await t.call('POST', '/v1/auth/refresh', {
      body: { refresh_token: r2.body.refresh_token },
    });
    assert.equal(after.status, 401);
    const me = await t.call('GET', '/v1/auth/me', { token: r2.body.access_token });
    assert.equal(me.status, 401);

    const other = await signUp(t, 'rotate-observer@example.com');
    assert.ok(other.id);
    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: 'rotate@example.com', password: user.password },
    });
    const events = await t.call('GET', '/v1/auth/security-events?kind=refresh_token_reuse', {
      token: login.body.access_token,
    });
    assert.equal(events.body.total, 1);
  });

  it('lists sessions, revokes one, and logs out', async () => {
    const user = await signUp(t, 'sessions@example.com');
    const second = await t.call('POST', '/v1/auth/login', {
      body: { email: 'sessions@example.com', password: user.password },
    });
    const list = await t.call('GET', '/v1/auth/sessions', { token: user.token });
    assert.equal(list.status, 200);
    assert.equal(list.body.total, 2);
    assert.equal(list.body.items.filter((s: { current: boolean }) => s.current).length, 1);

    const revoke = await t.call('DELETE', `/v1/auth/sessions/${second.body.session_id}`, {
      token: user.token,
    });
    assert.equal(revoke.status, 204);
    assert.equal((await t.call('GET', '/v1/auth/me', { token: second.body.access_token })).status, 401);

    const out = await t.call('POST', '/v1/auth/logout', { token: user.token });
    assert.equal(out.status, 204);
    assert.equal((await t.call('GET', '/v1/auth/me', { token: user.token })).status, 401);
    assert.equal(
      (await t.call('POST', '/v1/auth/refresh', { body: { refresh_token: user.tokens.refresh_token } }))
        .status,
      401,
    );
  });

  it('rejects forged, malformed and missing tokens', async () => {
    assert.equal((await t.call('GET', '/v1/auth/me')).status, 401);
    assert.equal((await t.call('GET', '/v1/auth/me', { token: 'not-a-jwt' })).status, 401);
    assert.equal(
      (await t.call('GET', '/v1/auth/me', { headers: { authorization: 'Basic abc' } })).status,
      401,
    );
    const forged =
      'eyJhbGciOiJIUzI1NiJ9.eyJ0eXAiOiJhY2Nlc3MiLCJzaWQiOiIwMWEyMDBiOC02MWI2LTcwMzYtOWE2ZS02NWRjNzU1ODk5NzMiLCJzdWIiOiJ4IiwiaXNzIjoibWFpbHJvb20iLCJleHAiOjQxMDI0NDQ4MDB9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    assert.equal((await t.call('GET', '/v1/auth/me', { token: forged })).status, 401);
  });
});

describe('passwords and mailed tokens', () => {
  it('verifies the email address with a single-use token', async () => {
    await signUp(t, 'verify@example.com');
    const token = t.mailer.tokenFor('verify@example.com', /Confirm/);
    const ok = await t.call('POST', '/v1/auth/verify-email', { body: { token } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.email_verified, true);
    const again = await t.call('POST', '/v1/auth/verify-email', { body: { token } });
    assert.equal(again.status, 400);
  });

  it('resets a password once, ends every session, and does not reveal unknown accounts', async () => {
    const user = await signUp(t, 'reset@example.com');
    const ghost = await t.call('POST', '/v1/auth/password-reset', { body: { email: 'nobody@example.com' } });
    const mailed = t.mailer.nextTokenFor('reset@example.com', /Reset/);
    assert.equal(ghost.status, 202);
    const req = await t.call('POST', '/v1/auth/password-reset', { body: { email: 'reset@example.com' } });
    assert.equal(req.status, 202);
    assert.deepEqual(req.body, ghost.body, 'the same answer whether or not the account exists');
    const token = await mailed;
    assert.ok(!t.mailer.sent.some((m) => m.to === 'nobody@example.com'));

    const done = await t.call('POST', '/v1/auth/password-reset/confirm', {
      body: { token, new_password: 'a brand new passphrase' },
    });
    assert.equal(done.status, 204);
    assert.equal((await t.call('GET', '/v1/auth/me', { token: user.token })).status, 401, 'old sessions end');
    const reuse = await t.call('POST', '/v1/auth/password-reset/confirm', {
      body: { token, new_password: 'another passphrase!' },
    });
    assert.equal(reuse.status, 400);
    assert.equal(
      (
        await t.call('POST', '/v1/auth/login', {
          body: { email: 'reset@example.com', password: user.password },
        })
      ).status,
      401,
    );
    assert.equal(
      (
        await t.call('POST', '/v1/auth/login', {
          body: { email: 'reset@example.com', password: 'a brand new passphrase' },
        })
      ).status,
      200,
    );
  });

  it('expired reset tokens are refused', async () => {
    await signUp(t, 'expired@example.com');
    const mailed = t.mailer.nextTokenFor('expired@example.com', /Reset/);
    await t.call('POST', '/v1/auth/password-reset', { body: { email: 'expired@example.com' } });
    const token = await mailed;
    await t.app.database.query(
      "update user_tokens set expires_at = now() - interval '1 minute' where purpose = 'reset_password'",
    );
    const res = await t.call('POST', '/v1/auth/password-reset/confirm', {
      body: { token, new_password: 'whatever passphrase' },
    });
    assert.equal(res.status, 400);
  });

  it('changes the password with the current one and ends other sessions', async () => {
    const user = await signUp(t, 'change@example.com');
    const other = await t.call('POST', '/v1/auth/login', {
      body: { email: 'change@example.com', password: user.password },
    });
    const wrong = await t.call('POST', '/v1/auth/password', {
      token: user.token,
      body: { current_password: 'not it at all', new_password: 'fresh new passphrase' },
    });
    assert.equal(wrong.status, 403);
    const ok = await t.call('POST', '/v1/auth/password', {
      token: user.token,
      body: { current_password: user.password, new_password: 'fresh new passphrase' },
    });
    assert.equal(ok.status, 204);
    assert.equal(
      (await t.call('GET', '/v1/auth/me', { token: user.token })).status,
      200,
      'this session stays',
    );
    assert.equal((await t.call('GET', '/v1/auth/me', { token: other.body.access_token })).status, 401);
  });
});

describe('TOTP MFA', () => {
  it('sets up, enables, challenges at login, accepts recovery codes once, and disables', async () => {
    const user = await signUp(t, 'mfa@example.com');
    const setup = await t.call('POST', '/v1/auth/mfa/setup', { token: user.token });
    assert.equal(setup.status, 200);
    assert.match(setup.body.otpauth_uri, /^otpauth:\/\/totp\/Mailroom:mfa%40example\.com\?/);
    assert.match(setup.body.qr_code, /^data:image\/png;base64,/);
    const secret = setup.body.secret as string;

    const bad = await t.call('POST', '/v1/auth/mfa/enable', {
      token: user.token,
      body: { code: '000000', password: user.password },
    });
    assert.equal(bad.status, 422);
    const hijacked = await t.call('POST', '/v1/auth/mfa/enable', {
      token: user.token,
      body: { code: totp(secret), password: 'not the password' },
    });
    assert.equal(hijacked.status, 403, 'a stolen session alone cannot enrol a device');
    const enable = await t.call('POST', '/v1/auth/mfa/enable', {
      token: user.token,
      body: { code: totp(secret), password: user.password },
    });
    assert.equal(enable.status, 200);
    assert.equal(enable.body.recovery_codes.length, 10);

    const stored = await t.app.database.query<{ mfa_secret: string }>(
      `select mfa_secret from users where email = 'mfa@example.com'`,
    );
    assert.ok(!stored.rows[0].mfa_secret.includes(secret), 'the TOTP secret is encrypted at rest');

    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: 'mfa@example.com', password: user.password },
    });
    assert.equal(login.status, 200);
    assert.equal(login.body.mfa_required, true);
    assert.ok(!('access_token' in login.body));

    // The code used to enable is spent; the same time step cannot be replayed.
    const replay = await t.call('POST', '/v1/auth/mfa/challenge', {
      body: { mfa_token: login.body.mfa_token, code: totp(secret) },
    });
    assert.equal(replay.status, 401);
    const next = await t.call('POST', '/v1/auth/mfa/challenge', {
      body: { mfa_token: login.body.mfa_token, code: totp(secret, 1) },
    });
    assert.equal(next.status, 200);
    assert.ok(next.body.access_token);

    const recovery = enable.body.recovery_codes[0] as string;
    const login2 = await t.call('POST', '/v1/auth/login', {
      body: { email: 'mfa@example.com', password: user.password },
    });
    const viaRecovery = await t.call('POST', '/v1/auth/mfa/challenge', {
      body: { mfa_token: login2.body.mfa_token, recovery_code: recovery.toUpperCase() },
    });
    assert.equal(viaRecovery.status, 200);
    const login3 = await t.call('POST', '/v1/auth/login', {
      body: { email: 'mfa@example.com', password: user.password },
    });
    const reused = await t.call('POST', '/v1/auth/mfa/challenge', {
      body: { mfa_token: login3.body.mfa_token, recovery_code: recovery },
    });
    assert.equal(reused.status, 401);

    const events = await t.call('GET', '/v1/auth/security-events?kind=mfa_failed', {
      token: next.body.access_token,
    });
    assert.ok(events.body.total >= 2);

    const disable = await t.call('POST', '/v1/auth/mfa/disable', {
      token: next.body.access_token,
      body: { password: user.password, recovery_code: enable.body.recovery_codes[1] },
    });
    assert.equal(disable.status, 204);
    const plain = await t.call('POST', '/v1/auth/login', {
      body: { email: 'mfa@example.com', password: user.password },
    });
    assert.ok(plain.body.access_token);
  });

  it('refuses a forged or expired MFA token', async () => {
    const res = await t.call('POST', '/v1/auth/mfa/challenge', {
      body: { mfa_token: 'x.y.z', code: '123456' },
    });
    assert.equal(res.status, 401);
  });
});

describe('rate limits', () => {
  it('limits logins per account, then per IP, with Retry-After', async () => {
    await signUp(t, 'limited@example.com');
    let last = 0;
    for (let i = 0; i < 11; i++) {
      const res = await t.call('POST', '/v1/auth/login', {
        body: { email: 'limited@example.com', password: 'wrong password!' },
        ip: `10.1.0.${i}`,
      });
      last = res.status;
      if (i < 10) assert.equal(res.status, 401);
      else {
        assert.equal(res.status, 429);
        assert.ok(Number(res.headers['retry-after']) > 0);
      }
    }
    assert.equal(last, 429);

    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      const res = await t.call('POST', '/v1/auth/login', {
        body: { email: `ip-${i}@example.com`, password: 'wrong password!' },
        ip: '10.2.0.1',
      });
      statuses.push(res.status);
    }
    assert.equal(statuses.at(-1), 429);
    assert.equal(statuses.filter((s) => s === 401).length, 20);
  });

  it('limits password reset requests per account', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await t.call('POST', '/v1/auth/password-reset', {
        body: { email: 'alice@example.com' },
        ip: `10.3.0.${i}`,
      });
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [202, 202, 202, 429]);
  });
});
