// SMS gateways as provider accounts over HTTP: each of the three connected after its credentials are
// checked with the gateway (local servers keeping each contract), refused when the gateway refuses,
// sealed at rest, and lent to other modules as a ready SmsProvider whose callbacks name the account.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type SmppServer, startSmppServer } from '../../support/smpp-server.ts';
import { type SmsGatewayServer, startSmsGatewayServer } from '../../support/sms-gateway-server.ts';
import { signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startTwilioServer, type TwilioServer } from '../../support/twilio-server.ts';
import { until } from '../../support/until.ts';

const PUBLIC_URL = 'https://mail.example.test';

describe('SMS gateway provider accounts', () => {
  let t: TestApp;
  let gateway: SmsGatewayServer;
  let twilio: TwilioServer;
  let smsc: SmppServer;
  let org: Awaited<ReturnType<typeof signUpWithOrg>>;

  before(async () => {
    gateway = await startSmsGatewayServer();
    twilio = await startTwilioServer();
    smsc = await startSmppServer();
    t = await startTestApp({
      env: {
        MAILROOM_SMS_GATEWAY_URL: gateway.baseUrl,
        MAILROOM_TWILIO_API_URL: twilio.apiUrl,
        MAILROOM_PUBLIC_URL: PUBLIC_URL,
      },
    });
    org = await signUpWithOrg(t, 'sms-accounts@example.com', 'SMS org');
  });

  after(async () => {
    await t.close();
    await smsc.close();
    await twilio.close();
    await gateway.close();
  });

  const connect = (body: unknown, token = org.token) =>
    t.call('POST', '/v1/provider-accounts', { token, body });

  test('SMS Gateway for Android (cloud mode): checked, connected, sealed, never shown', async () => {
    const credentials = {
      username: gateway.username,
      password: gateway.password,
      webhook_signing_key: gateway.signingKey,
    };
    const refused = await connect({
      provider: 'android-sms-gateway',
      name: 'Phone',
      credentials: { ...credentials, password: 'not-the-password' },
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'provider_auth_failed');

    const res = await connect({ provider: 'android-sms-gateway', name: 'Phone', credentials });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.kind, 'sms');
    assert.equal(res.body.provider, 'android-sms-gateway');
    assert.equal(res.body.credential_hint, `${gateway.username}@cloud`);
    assert.equal(gateway.requests.at(-1)!.path, '/3rdparty/v1/webhooks');

    const listed = await t.call('GET', '/v1/provider-accounts', { token: org.token });
    assert.ok(listed.body.items.some((a: { id: string }) => a.id === res.body.id));
    assert.doesNotMatch(JSON.stringify(listed.body), new RegExp(gateway.password));
    const stored = await t.app.database.query<{ credentials: string }>(
      'select credentials from provider_accounts where id = $1',
      [res.body.id],
    );
    assert.match(stored.rows[0].credentials, /^v1\./);
    assert.ok(!stored.rows[0].credentials.includes(gateway.password));
    assert.ok(!stored.rows[0].credentials.includes(gateway.signingKey));
  });

  test('Twilio: connected, and lent with its status callback pointing at the account', async () => {
    const missingSender = await connect({
      provider: 'twilio',
      name: 'Twilio',
      credentials: { account_sid: twilio.accountSid, auth_token: twilio.authToken },
    });
    assert.equal(missingSender.status, 422);
    assert.equal(missingSender.body.errors?.[0]?.field, 'credentials.from');

    const res = await connect({
      provider: 'twilio',
      name: 'Twilio',
      credentials: { account_sid: twilio.accountSid, auth_token: twilio.authToken, from: twilio.numbers[0] },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.credential_hint, `…${twilio.authToken.slice(-4)}`);

    const { account, provider } = await t.app.services.providerAccounts.smsProvider(org.orgId, res.body.id);
    assert.equal(account.id, res.body.id);
    assert.equal(provider.name, 'twilio');
    const sent = await provider.send({
      id: '0190f0c2-0000-7000-8000-00000000aaaa',
      to: '+447700900123',
      body: 'Hello from Mailroom',
      encoding: 'gsm7',
    });
    await provider.close();
    assert.equal(
      twilio.messages.get(sent.providerId)!.statusCallback,
      `${PUBLIC_URL}/v1/sms/webhooks/${res.body.id}`,
    );
    const after = await t.call('GET', `/v1/provider-accounts/${res.body.id}`, { token: org.token });
    assert.ok(after.body.last_used_at);
  });

  test('SMPP: the bind checks the password, and the check does not leave a connection open', async () => {
    const credentials = {
      host: smsc.host,
      port: String(smsc.port),
      system_id: smsc.systemId,
      password: smsc.password,
      source_addr: 'Mailroom',
    };
    const refused = await connect({
      provider: 'smpp',
      name: 'SMSC',
      credentials: { ...credentials, password: 'wrong' },
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'provider_auth_failed');
    const badPort = await connect({
      provider: 'smpp',
      name: 'SMSC',
      credentials: { ...credentials, port: '99999' },
    });
    assert.equal(badPort.status, 422);

    const binds = smsc.binds;
    const res = await connect({ provider: 'smpp', name: 'SMSC', credentials });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.credential_hint, `${smsc.systemId}@${smsc.host}:${smsc.port}`);
    assert.equal(smsc.binds, binds + 1);
    await until(
      async () => smsc.connections,
      (n) => n === 0,
    );

    const { provider } = await t.app.services.providerAccounts.smsProvider(org.orgId, res.body.id);
    try {
      assert.equal(provider.capabilities.window, 100);
      const sent = await provider.send({
        id: '0190f0c2-0000-7000-8000-00000000bbbb',
        to: '+447700900123',
        body: 'Over SMPP',
        encoding: 'gsm7',
      });
      assert.equal(smsc.submits.at(-1)!.messageId, sent.providerId);
    } finally {
      await provider.close();
    }
  });

  test('an SMS account is not a DNS provider, and another organisation cannot borrow it', async () => {
    const listed = await t.call('GET', '/v1/provider-accounts', { token: org.token });
    const sms = listed.body.items.find((a: { provider: string }) => a.provider === 'twilio');
    await assert.rejects(
      t.app.services.providerAccounts.dnsProvider(org.orgId, sms.id),
      /not a DNS provider/,
    );
    const other = await signUpWithOrg(t, 'sms-accounts-other@example.com', 'Other');
    assert.equal(
      (await t.call('GET', `/v1/provider-accounts/${sms.id}`, { token: other.token })).status,
      404,
    );
    await assert.rejects(t.app.services.providerAccounts.smsProvider(other.orgId, sms.id), /not found/i);
  });

  test('unknown SMS credential fields are refused before any gateway is called', async () => {
    const calls = gateway.requests.length;
    const res = await connect({
      provider: 'android-sms-gateway',
      name: 'Phone',
      credentials: { username: 'u', password: 'p', api_key: 'x' },
    });
    assert.equal(res.status, 422);
    assert.equal(gateway.requests.length, calls);
  });
});
