// The SMPP adapter over loopback against an SMSC built with the `smpp` package's server: bind and
// verify, windowed submits in both data codings and message_payload, receipts and received messages
// acknowledged only after the handler, throttling, a dropped link and the reconnect, TLS, and the
// submit rate the issue asks for.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import smpp from 'smpp';
import { ProviderError } from '../../../src/providers/errors.ts';
import { type SmppOptions, smppProvider } from '../../../src/providers/sms/smpp.ts';
import { type SmsProvider, type SmsProviderEvent, SmsSendError } from '../../../src/providers/sms/types.ts';
import { type SmppServer, startSmppServer } from '../../support/smpp-server.ts';
import { createTestTls } from '../../support/test-tls.ts';
import { until } from '../../support/until.ts';

const E = smpp.errors;
let server: SmppServer;
const open: SmsProvider[] = [];

function provider(options: SmppOptions = {}, overrides: Record<string, string> = {}, target = server) {
  const made = smppProvider(
    {
      host: target.host,
      port: String(target.port),
      system_id: target.systemId,
      password: target.password,
      source_addr: 'Mailroom',
      ...overrides,
    },
    { reconnectMinMs: 20, ...options },
  );
  open.push(made);
  return made;
}

let sequence = 0;
function sms(body: string, encoding: 'gsm7' | 'ucs2' = 'gsm7', to = '+447700900123') {
  return { id: `0190f0c2-0000-7000-8000-${String(++sequence).padStart(12, '0')}`, to, body, encoding };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function rejectsWith(promise: Promise<unknown>, check: (error: SmsSendError) => void) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SmsSendError, `expected an SmsSendError, got ${error}`);
    check(error);
    return true;
  });
}

before(async () => {
  server = await startSmppServer();
});

afterEach(async () => {
  for (const p of open.splice(0)) await p.close();
  server.answerSubmits = true;
  server.autoReceipts = false;
  server.throttleNext(0);
});

after(async () => {
  await server.close();
});

describe('verify', () => {
  test('binds as transceiver, then unbinds', async () => {
    const before = server.binds;
    await provider().verify();
    assert.equal(server.binds, before + 1);
    await until(
      async () => server.connections,
      (n) => n === 0,
    );
  });

  test('a wrong password is refused as an auth failure', async () => {
    await assert.rejects(provider({}, { password: 'wrong' }).verify(), (error: unknown) => {
      assert.ok(error instanceof ProviderError);
      assert.equal(error.code, 'provider_auth_failed');
      assert.match(error.message, /ESME_RINVPASWD/);
      return true;
    });
  });

  test('nobody listening is an unavailable provider', async () => {
    const closed = await startSmppServer();
    await closed.close();
    await assert.rejects(provider({}, {}, closed).verify(), (error: unknown) => {
      assert.ok(error instanceof ProviderError);
      assert.equal(error.code, 'provider_unavailable');
      return true;
    });
  });
});

describe('send', () => {
  test('GSM-7 in short_message with data_coding 0, E.164 as international, a receipt asked for', async () => {
    const result = await provider().send(sms('Your code is 4471. Price: 5€ [x]'));
    const submit = server.submits.at(-1)!;
    assert.deepEqual(result, { providerId: submit.messageId, status: 'sending' });
    assert.equal(submit.dataCoding, 0);
    assert.equal(submit.text, 'Your code is 4471. Price: 5€ [x]');
    assert.equal(submit.payload, false);
    assert.equal(submit.destinationAddr, '447700900123');
    assert.equal(submit.destinationTon, smpp.consts.TON.INTERNATIONAL);
    assert.equal(submit.sourceAddr, 'Mailroom');
    assert.equal(submit.sourceTon, smpp.consts.TON.ALPHANUMERIC);
    assert.equal(submit.registeredDelivery & 1, 1);
  });

  test('UCS-2 with data_coding 8; a numeric sender given per message', async () => {
    await provider().send({ ...sms('Привет, ваш код 4471 🙂', 'ucs2'), from: '+15005550006' });
    const submit = server.submits.at(-1)!;
    assert.equal(submit.dataCoding, 8);
    assert.equal(submit.text, 'Привет, ваш код 4471 🙂');
    assert.equal(submit.sourceAddr, '15005550006');
    assert.equal(submit.sourceTon, smpp.consts.TON.INTERNATIONAL);
  });

  test('a long message is one submit_sm with message_payload', async () => {
    const gsm = 'Long text, part of a reminder. '.repeat(12);
    const ucs = 'Длинное сообщение. '.repeat(6);
    const p = provider();
    await p.send(sms(gsm));
    const first = server.submits.at(-1)!;
    await p.send(sms(ucs, 'ucs2'));
    const second = server.submits.at(-1)!;
    assert.deepEqual([first.payload, first.text, first.dataCoding], [true, gsm, 0]);
    assert.deepEqual([second.payload, second.text, second.dataCoding], [true, ucs, 8]);
  });

  test('160 GSM-7 septets still fit one part; 159 with one extension character do not', async () => {
    const p = provider();
    await p.send(sms('a'.repeat(160)));
    assert.equal(server.submits.at(-1)!.payload, false);
    await p.send(sms(`${'a'.repeat(159)}€`));
    assert.equal(server.submits.at(-1)!.payload, true);
  });

  test('throttling answers are retryable with a retry-after; a refused number is not retryable', async () => {
    const p = provider({ throttleRetryMs: 1500 });
    server.throttleNext(1, E.ESME_RTHROTTLED);
    await rejectsWith(p.send(sms('throttled')), (error) => {
      assert.deepEqual(error.options, { retryable: true, retryAfterMs: 1500, code: '0x00000058' });
      assert.match(error.message, /ESME_RTHROTTLED/);
    });
    server.throttleNext(1, E.ESME_RMSGQFUL);
    await rejectsWith(p.send(sms('queue full')), (error) => {
      assert.equal(error.options.retryable, true);
      assert.equal(error.options.code, '0x00000014');
    });
    await rejectsWith(p.send(sms('bad number', 'gsm7', '+12')), (error) => {
      assert.deepEqual(error.options, { retryable: false, code: '0x0000000b' });
      assert.match(error.message, /ESME_RINVDSTADR/);
    });
    // The link survives refusals.
    assert.ok((await p.send(sms('after'))).providerId);
  });

  test('a wrong password fails sends as not retryable', async () => {
    await rejectsWith(provider({}, { password: 'nope' }).send(sms('x')), (error) => {
      assert.equal(error.options.retryable, false);
      assert.equal(error.options.code, '0x0000000e');
    });
  });

  test('enquire_link runs on its interval', async () => {
    const p = provider({ enquireLinkMs: 30 });
    await p.send(sms('keep alive'));
    const before = server.enquireLinks;
    await until(
      async () => server.enquireLinks,
      (n) => n >= before + 2,
    );
  });

  test('after close, sends fail as retryable and the link is unbound', async () => {
    const p = provider();
    await p.send(sms('one'));
    await p.close();
    await until(
      async () => server.connections,
      (n) => n === 0,
    );
    await rejectsWith(p.send(sms('two')), (error) => assert.equal(error.options.retryable, true));
  });
});

describe('window and reconnect', () => {
  test('at most `window` submits are outstanding; a drop fails them as retryable and the link is bound again', async () => {
    const p = provider({ window: 5 });
    assert.equal(p.capabilities.window, 5);
    // submit_sm has no idempotency key: what may have been taken is never submitted again.
    assert.equal(p.capabilities.idempotentSubmit, false);
    await p.send(sms('warm up'));
    const bindsBefore = server.binds;
    const startIndex = server.submits.length;
    server.answerSubmits = false;
    const results = Array.from({ length: 8 }, (_, i) =>
      p.send(sms(`windowed ${i}`)).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    );
    await until(
      async () => server.submits.length - startIndex,
      (n) => n >= 5,
    );
    // Five outstanding on the first link: the other three wait for a slot.
    assert.equal(server.submits.length - startIndex, 5);
    server.answerSubmits = true;
    server.dropConnections();
    const settled = await Promise.all(results);
    const failed = settled.filter((r) => !r.ok);
    const sent = settled.filter((r) => r.ok);
    assert.equal(failed.length, 5);
    for (const r of failed) {
      assert.ok(r.error instanceof SmsSendError);
      assert.equal(r.error.options.retryable, true);
      assert.equal(r.error.options.code, 'connection_lost');
    }
    assert.equal(sent.length, 3);
    assert.equal(server.binds, bindsBefore + 1);
    const second = server.submits.slice(startIndex).filter((s) => s.bind === bindsBefore + 1);
    assert.equal(second.length, 3);
  });

  test('a subscribed link reconnects by itself after a drop and keeps receiving', async () => {
    const p = provider();
    const events: SmsProviderEvent[] = [];
    p.onEvent!(async (event) => {
      events.push(event);
    });
    await until(
      async () => server.connections,
      (n) => n === 1,
    );
    const binds = server.binds;
    server.dropConnections();
    await until(
      async () => server.binds,
      (n) => n === binds + 1,
    );
    const [answer] = await server.sendInbound({ from: '+447700900555', to: '+447700900001', text: 'STOP' });
    assert.equal(answer.status, 0);
    assert.equal(events.length, 1);
    assert.equal(events[0].type, 'inbound');
  });

  test('a link that cannot bind answers sends with the wait until the next attempt', async () => {
    const gone = await startSmppServer();
    const p = provider({ reconnectMinMs: 60_000, responseTimeoutMs: 1000 }, {}, gone);
    await p.send(sms('first'));
    gone.dropConnections();
    await gone.close();
    // Until the client has seen the drop, a send may still meet the closing connection.
    const error = await until(
      () =>
        p.send(sms('while down')).then(
          () => null,
          (e: unknown) => e,
        ),
      (e) => e instanceof SmsSendError && e.options.code === 'link_down',
      5_000,
    );
    assert.ok(error instanceof SmsSendError);
    assert.equal(error.options.retryable, true);
    assert.ok(error.options.retryAfterMs! > 1000);
  });
});

describe('deliver_sm', () => {
  test('a receipt reaches the handler and is acknowledged only once the handler has resolved', async () => {
    const p = provider();
    const events: SmsProviderEvent[] = [];
    const gate = deferred();
    let releasedAt = 0;
    p.onEvent!(async (event) => {
      events.push(event);
      await gate.promise;
      releasedAt = Date.now();
    });
    const { providerId } = await p.send(sms('receipt me'));
    let answered = false;
    const answer = server.sendReceipt(providerId).then((result) => {
      answered = true;
      return result;
    });
    await until(
      async () => events.length,
      (n) => n === 1,
    );
    assert.equal(answered, false);
    gate.resolve();
    const result = await answer;
    assert.equal(result.status, 0);
    assert.ok(result.at >= releasedAt);
    const [receipt] = events;
    assert.equal(receipt.type, 'receipt');
    assert.equal(receipt.type === 'receipt' && receipt.providerId, providerId);
    assert.equal(receipt.type === 'receipt' && receipt.status, 'delivered');
  });

  test('receipt text alone (no TLVs) is parsed: state and error code', async () => {
    const p = provider();
    const events: SmsProviderEvent[] = [];
    p.onEvent!(async (event) => {
      events.push(event);
    });
    const first = await p.send(sms('will not arrive'));
    const second = await p.send(sms('refused'));
    await server.sendReceipt(first.providerId, { stat: 'UNDELIV', err: '001', tlvs: false });
    await server.sendReceipt(second.providerId, { stat: 'REJECTD', err: '00B', tlvs: false });
    assert.deepEqual(
      events.map((e) => e.type === 'receipt' && [e.providerId, e.status, e.errorCode]),
      [
        [first.providerId, 'undelivered', '001'],
        [second.providerId, 'failed', '00B'],
      ],
    );
  });

  test('the message_state TLV wins over the text', async () => {
    const p = provider();
    const events: SmsProviderEvent[] = [];
    p.onEvent!(async (event) => {
      events.push(event);
    });
    const sent = await p.send(sms('enroute'));
    await server.sendReceipt(sent.providerId, { stat: 'DELIVRD', state: smpp.consts.MESSAGE_STATE.ENROUTE });
    assert.equal(events[0].type === 'receipt' && events[0].status, 'sent');
  });

  test('a failing handler gets a temporary error answer, so the SMSC delivers again', async () => {
    const p = provider();
    let calls = 0;
    p.onEvent!(async () => {
      calls++;
      if (calls === 1) throw new Error('database down');
    });
    const sent = await p.send(sms('retry me'));
    assert.equal((await server.sendReceipt(sent.providerId)).status, E.ESME_RX_T_APPN);
    assert.equal((await server.sendReceipt(sent.providerId)).status, 0);
    assert.equal(calls, 2);
  });

  test('received messages in GSM-7 and UCS-2, numbers back in E.164', async () => {
    const p = provider();
    const events: SmsProviderEvent[] = [];
    p.onEvent!(async (event) => {
      events.push(event);
    });
    await until(
      async () => server.connections,
      (n) => n >= 1,
    );
    await server.sendInbound({ from: '+447700900555', to: '+447700900001', text: 'HELP me {now}' });
    await server.sendInbound({
      from: '+79990001234',
      to: '+447700900001',
      text: 'Стоп 🙂',
      encoding: 'ucs2',
    });
    assert.deepEqual(
      events.map((e) => e.type === 'inbound' && [e.from, e.to, e.body]),
      [
        ['+447700900555', '+447700900001', 'HELP me {now}'],
        ['+79990001234', '+447700900001', 'Стоп 🙂'],
      ],
    );
  });

  test('a concatenated received message is passed on once, whole, and every part acknowledged after', async () => {
    const p = provider();
    const events: SmsProviderEvent[] = [];
    p.onEvent!(async (event) => {
      events.push(event);
    });
    await until(
      async () => server.connections,
      (n) => n >= 1,
    );
    const text = 'This reply is long enough that the phone sent it in three parts, concatenated with a UDH.';
    const answers = await server.sendInbound({ from: '+447700900556', to: '+447700900001', text, parts: 3 });
    assert.deepEqual(
      answers.map((a) => a.status),
      [0, 0, 0],
    );
    assert.equal(events.length, 1);
    assert.equal(events[0].type === 'inbound' && events[0].body, text);
  });

  test('without a subscriber, deliver_sm gets a temporary error (nothing is acknowledged unseen)', async () => {
    const p = provider();
    const sent = await p.send(sms('nobody listens'));
    assert.equal((await server.sendReceipt(sent.providerId)).status, E.ESME_RX_T_APPN);
  });
});

describe('TLS', () => {
  test('binds and submits over TLS when the account says tls', async () => {
    const tls = await createTestTls(['127.0.0.1']);
    const secure = await startSmppServer({ tls });
    try {
      const p = provider({ tlsOptions: { ca: tls.cert } }, { tls: 'true' }, secure);
      await p.verify();
      const result = await p.send(sms('over TLS'));
      assert.equal(secure.submits.at(-1)!.messageId, result.providerId);
      // A client that does not trust the certificate is refused.
      const untrusting = provider({}, { tls: 'true' }, secure);
      await assert.rejects(untrusting.verify(), (error: unknown) => error instanceof ProviderError);
    } finally {
      for (const p of open.splice(0)) await p.close();
      await secure.close();
    }
  });
});

describe('throughput', () => {
  test('sustains at least 1,000 submits a second on loopback (window 100)', async () => {
    const p = provider({ window: 100 });
    await p.send(sms('warm up'));
    const count = 5_000;
    const started = performance.now();
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++)
      sends.push(p.send(sms(`Campaign message ${i}: your appointment is tomorrow.`)));
    await Promise.all(sends);
    const seconds = (performance.now() - started) / 1000;
    const rate = count / seconds;
    console.log(`SMPP submit rate: ${Math.round(rate)}/s (${count} submits in ${seconds.toFixed(2)} s)`);
    assert.ok(rate >= 1000, `only ${Math.round(rate)} submits/s`);
  });
});
