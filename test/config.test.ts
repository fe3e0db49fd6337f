import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('settings', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({}, null);
    assert.equal(c.http.host, '127.0.0.1');
    assert.equal(c.http.port, 8080);
    assert.equal(c.hostname, 'localhost');
    assert.equal(c.smtpPort, 2525);
    assert.equal(c.submissionPort, 2587);
    assert.equal(c.imapPort, 2143);
    assert.equal(c.outbound.port, 25);
    assert.deepEqual(c.dnsServers, []);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.secretKey, null);
    assert.equal(c.tls, null);
    assert.deepEqual(c.webhooks.allowHosts, []);
    assert.equal(c.dataDir, path.resolve('./data'));
    assert.equal(c.trustProxy, false);
  });

  it('parses the proxy trust setting', () => {
    assert.equal(loadConfig({ MAILROOM_TRUST_PROXY: 'true' }, null).trustProxy, true);
    assert.equal(loadConfig({ MAILROOM_TRUST_PROXY: '2' }, null).trustProxy, 2);
    assert.deepEqual(loadConfig({ MAILROOM_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }, null).trustProxy, [
      '10.0.0.0/8',
      '127.0.0.1',
    ]);
    assert.throws(
      () => loadConfig({ MAILROOM_TRUST_PROXY: 'lb.internal' }, null),
      /MAILROOM_TRUST_PROXY: "lb.internal" is not an IP or CIDR/,
    );
  });

  it('names every wrong value, one message each', () => {
    try {
      loadConfig(
        {
          MAILROOM_HTTP_PORT: 'eighty',
          MAILROOM_SMTP_PORT: '70000',
          DATABASE_URL: 'mysql://x',
          REDIS_URL: 'http://x',
          MAILROOM_DNS_SERVERS: '1.1.1.1,not-an-ip',
          MAILROOM_SECRET_KEY: 'short',
          MAILROOM_TLS_CERT: '/does/not/exist.pem',
          MAILROOM_HOSTNAME: 'bad host!',
        },
        null,
      );
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const byName = (name: string) => err.problems.filter((p) => p.startsWith(`${name}:`));
      for (const name of [
        'MAILROOM_HTTP_PORT',
        'MAILROOM_SMTP_PORT',
        'DATABASE_URL',
        'REDIS_URL',
        'MAILROOM_DNS_SERVERS',
        'MAILROOM_SECRET_KEY',
        'MAILROOM_TLS_CERT',
        'MAILROOM_HOSTNAME',
      ]) {
        assert.equal(byName(name).length, 1, `${name}: ${err.problems.join(' | ')}`);
      }
      assert.match(err.message, /MAILROOM_DNS_SERVERS.*not-an-ip/);
    }
  });

  it('requires a shared secret key with PostgreSQL, and both TLS files or neither', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://localhost/x' }, null),
      /MAILROOM_SECRET_KEY: required/,
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-config-'));
    writeFileSync(path.join(dir, 'cert.pem'), 'x');
    assert.throws(
      () => loadConfig({ MAILROOM_TLS_CERT: path.join(dir, 'cert.pem') }, null),
      /set both or neither/,
    );
  });

  it('reads .env under the environment, and parses lists', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-config-'));
    const file = path.join(dir, '.env');
    writeFileSync(
      file,
      'MAILROOM_HTTP_PORT=9090\nMAILROOM_HOSTNAME=mx.example.com\nMAILROOM_DNS_SERVERS=127.0.0.1:5353, [::1]:53\nMAILROOM_SECRET_KEY=' +
        'ab'.repeat(32) +
        '\n',
    );
    const c = loadConfig({ MAILROOM_HTTP_PORT: '7070' }, file);
    assert.equal(c.http.port, 7070, 'the environment wins');
    assert.equal(c.hostname, 'mx.example.com');
    assert.deepEqual(c.dnsServers, ['127.0.0.1:5353', '[::1]:53']);
    assert.equal(c.secretKey?.length, 32);
  });

  it('OAuth sign-in: off without a client, the providers’ endpoints and servers unless set', () => {
    const c = loadConfig({ MAILROOM_PUBLIC_URL: 'https://mail.example.com/' }, null);
    assert.equal(c.oauth.redirectUri, 'https://mail.example.com/v1/accounts/oauth/callback');
    assert.equal(c.oauth.google.client, null);
    assert.equal(c.oauth.google.endpoints.tokenUrl, 'https://oauth2.googleapis.com/token');
    assert.deepEqual(c.oauth.google.imap, { host: 'imap.gmail.com', port: 993, security: 'tls' });
    assert.deepEqual(c.oauth.microsoft.smtp, { host: 'smtp.office365.com', port: 587, security: 'starttls' });

    const set = loadConfig(
      {
        MAILROOM_OAUTH_MICROSOFT_CLIENT_ID: 'id',
        MAILROOM_OAUTH_MICROSOFT_CLIENT_SECRET: 'secret',
        MAILROOM_OAUTH_MICROSOFT_TENANT: 'contoso.onmicrosoft.com',
        MAILROOM_OAUTH_MICROSOFT_IMAP: '127.0.0.1:1143:none',
      },
      null,
    );
    assert.deepEqual(set.oauth.microsoft.client, { clientId: 'id', clientSecret: 'secret' });
    assert.equal(
      set.oauth.microsoft.endpoints.authorizeUrl,
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize',
    );
    assert.deepEqual(set.oauth.microsoft.imap, { host: '127.0.0.1', port: 1143, security: 'none' });

    assert.throws(() => loadConfig({ MAILROOM_OAUTH_GOOGLE_CLIENT_ID: 'id' }, null), /set both or neither/);
    assert.throws(
      () => loadConfig({ MAILROOM_OAUTH_GOOGLE_SMTP: 'smtp.gmail.com:465' }, null),
      /MAILROOM_OAUTH_GOOGLE_SMTP: .*host:port:security/,
    );
  });
});
