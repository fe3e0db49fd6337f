// The Namecheap registrar adapter against a local server that keeps Namecheap's documented contract,
// plus servers that misbehave (garbage, HTTP errors, silence) and an address nobody listens on.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ProviderError, type ProviderErrorCode } from '../../src/providers/errors.ts';
import { namecheapRegistrar } from '../../src/providers/registrar/namecheap.ts';
import type { RegistrantContact } from '../../src/providers/registrar/types.ts';
import { CONTACT_ROLES, type NamecheapServer, startNamecheapServer } from '../support/namecheap-server.ts';

const contact: RegistrantContact = {
  first_name: 'Ada',
  last_name: 'Lovelace',
  organization: 'Analytical Engines & Sons',
  address1: "12 St James's Square",
  address2: 'Floor 2',
  city: 'London',
  state_province: 'Greater London',
  postal_code: 'SW1Y 4JH',
  country: 'GB',
  phone: '+44.2079460000',
  email: 'ada@example.org',
};

let server: NamecheapServer;

function registrar(
  overrides: { api_key?: string; client_ip?: string; apiUrl?: string; timeoutMs?: number } = {},
) {
  return namecheapRegistrar(
    {
      api_user: server.apiUser,
      api_key: overrides.api_key ?? server.apiKey,
      client_ip: overrides.client_ip ?? server.clientIp,
    },
    { apiUrl: overrides.apiUrl ?? server.apiUrl, timeoutMs: overrides.timeoutMs },
  );
}

/** Asserts the promise fails with a ProviderError of `code` that does not leak the API key. */
async function rejectsWith(promise: Promise<unknown>, code: ProviderErrorCode, message?: RegExp) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ProviderError, `expected a ProviderError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    assert.doesNotMatch(err.message, new RegExp(server.apiKey));
    return true;
  });
}

/** A loopback server answering every request with `handler`, for misbehaving-Namecheap cases. */
async function startFakeServer(handler: http.RequestListener) {
  const fake = http.createServer(handler);
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(fake.address() as AddressInfo).port}/xml.response`,
    close: () =>
      new Promise<void>((resolve) => {
        fake.closeAllConnections();
        fake.close(() => resolve());
      }),
  };
}

before(async () => {
  server = await startNamecheapServer();
});

after(async () => {
  await server.close();
});

describe('verify', () => {
  test('accepts good credentials', async () => {
    await registrar().verify();
    const last = server.requests.at(-1)!;
    assert.equal(last.command, 'namecheap.users.getBalances');
    assert.equal(last.params.ApiKey, '[redacted]');
    assert.equal(last.params.UserName, server.apiUser);
  });

  test('a wrong API key is an auth failure', async () => {
    await rejectsWith(
      registrar({ api_key: 'not-the-key' }).verify(),
      'provider_auth_failed',
      /error 1011102/,
    );
  });

  test('a client IP outside the whitelist is an auth failure', async () => {
    await rejectsWith(
      registrar({ client_ip: '198.51.100.7' }).verify(),
      'provider_auth_failed',
      /Invalid request IP: 198\.51\.100\.7 \(error 1011150\)/,
    );
  });
});

describe('check', () => {
  test('reports availability, premium prices, prices from getPricing and names it cannot check', async () => {
    server.taken.add('taken.com');
    server.premium.set('gold.io', '2500.00');
    const before = server.requests.length;

    const results = await registrar().check([
      'fresh.com',
      'taken.com',
      'gold.io',
      'brit.co.uk',
      'other.com',
      'odd.zz',
      'a&b.com',
    ]);

    assert.deepEqual(results, [
      { name: 'fresh.com', available: true, premium: false, price: '10.98', currency: 'USD', error: null },
      { name: 'taken.com', available: false, premium: false, price: null, currency: null, error: null },
      { name: 'gold.io', available: true, premium: true, price: '2500.00', currency: 'USD', error: null },
      { name: 'brit.co.uk', available: true, premium: false, price: '8.98', currency: 'USD', error: null },
      { name: 'other.com', available: true, premium: false, price: '10.98', currency: 'USD', error: null },
      {
        name: 'odd.zz',
        available: false,
        premium: false,
        price: null,
        currency: null,
        error: 'TLD is not supported in API (error 2030280)',
      },
      // Echoed back escaped in an attribute, and read back unescaped.
      {
        name: 'a&b.com',
        available: false,
        premium: false,
        price: null,
        currency: null,
        error: 'Domain is invalid (error 2030166)',
      },
    ]);
    const sent = server.requests.slice(before);
    assert.deepEqual(
      sent.map((r) => r.command),
      ['namecheap.domains.check', 'namecheap.users.getPricing', 'namecheap.users.getPricing'],
    );
    assert.equal(
      sent[0].params.DomainList,
      'fresh.com,taken.com,gold.io,brit.co.uk,other.com,odd.zz,a&b.com',
    );
    // One pricing call per TLD that needs a price: not for the premium .io, not twice for .com.
    assert.deepEqual(
      sent.slice(1).map((r) => [r.params.ProductType, r.params.ActionName, r.params.ProductName]),
      [
        ['DOMAIN', 'REGISTER', 'com'],
        ['DOMAIN', 'REGISTER', 'co.uk'],
      ],
    );
  });

  test('checks more than 50 names in batches of 50', async () => {
    server.taken.add('batch-77.net');
    const names = Array.from({ length: 120 }, (_, i) => `batch-${i}.net`);
    const before = server.requests.length;

    const results = await registrar().check(names);

    assert.deepEqual(
      results.map((r) => r.name),
      names,
    );
    assert.equal(results.find((r) => r.name === 'batch-77.net')!.available, false);
    assert.ok(
      results.filter((r) => r.name !== 'batch-77.net').every((r) => r.available && r.price === '12.98'),
    );
    const checks = server.requests.slice(before).filter((r) => r.command === 'namecheap.domains.check');
    assert.deepEqual(
      checks.map((r) => r.params.DomainList.split(',').length),
      [50, 50, 20],
    );
  });
});

describe('register', () => {
  test('sends all four contact roles and the name servers', async () => {
    const registration = await registrar().register({
      name: 'newco.com',
      years: 2,
      contact,
      nameservers: ['ns1.mailroom.example', 'ns2.mailroom.example'],
    });

    assert.equal(registration.name, 'newco.com');
    assert.equal(registration.registered, true);
    assert.equal(registration.charged_amount, '21.96');
    assert.match(registration.domain_id, /^\d+$/);
    assert.match(registration.order_id, /^\d+$/);
    assert.match(registration.transaction_id, /^\d+$/);

    const received = server.registrations.find((r) => r.name === 'newco.com')!;
    assert.equal(received.years, 2);
    assert.deepEqual(received.nameservers, ['ns1.mailroom.example', 'ns2.mailroom.example']);
    for (const role of CONTACT_ROLES) {
      assert.deepEqual(received.contacts[role], {
        FirstName: 'Ada',
        LastName: 'Lovelace',
        OrganizationName: 'Analytical Engines & Sons',
        Address1: "12 St James's Square",
        Address2: 'Floor 2',
        City: 'London',
        StateProvince: 'Greater London',
        PostalCode: 'SW1Y 4JH',
        Country: 'GB',
        Phone: '+44.2079460000',
        EmailAddress: 'ada@example.org',
      });
    }
    const request = server.requests.at(-1)!;
    assert.equal(request.method, 'POST');
    assert.equal(request.params.Nameservers, 'ns1.mailroom.example,ns2.mailroom.example');
    assert.equal(request.params.ApiKey, '[redacted]');
  });

  test('leaves optional contact fields and name servers out when absent', async () => {
    const { organization: _, address2: __, ...bare } = contact;
    await registrar().register({ name: 'plain.org', years: 1, contact: bare });

    const request = server.requests.at(-1)!;
    assert.equal(request.params.Nameservers, undefined);
    for (const role of CONTACT_ROLES) {
      assert.equal(request.params[`${role}OrganizationName`], undefined);
      assert.equal(request.params[`${role}Address2`], undefined);
    }
    assert.deepEqual(server.nameservers.get('plain.org'), [
      'dns1.registrar-servers.com',
      'dns2.registrar-servers.com',
    ]);
  });

  test("a taken name is refused with Namecheap's message", async () => {
    server.taken.add('gone.com');
    await rejectsWith(
      registrar().register({ name: 'gone.com', years: 1, contact }),
      'provider_rejected',
      /^Namecheap refused: Domain not available \(error 3019166\)$/,
    );
  });

  test('an invalid contact field is refused, naming the parameter', async () => {
    await rejectsWith(
      registrar().register({
        name: 'badphone.com',
        years: 1,
        contact: { ...contact, phone: '020 7946 0000' },
      }),
      'provider_rejected',
      /RegistrantPhone is invalid.*\(error 2015182\)/,
    );
    assert.equal(server.taken.has('badphone.com'), false);
  });

  test('a premium name is not bought at an unconfirmed price', async () => {
    server.premium.set('shiny.com', '980.00');
    await rejectsWith(
      registrar().register({ name: 'shiny.com', years: 1, contact }),
      'provider_rejected',
      /error 2515623/,
    );
  });
});

describe('setNameservers', () => {
  test('splits a multi-label suffix into SLD and TLD', async () => {
    await registrar().register({ name: 'example.co.uk', years: 1, contact });

    await registrar().setNameservers('example.co.uk', ['ns1.mailroom.example', 'ns2.mailroom.example']);

    const request = server.requests.at(-1)!;
    assert.equal(request.command, 'namecheap.domains.dns.setCustom');
    assert.equal(request.params.SLD, 'example');
    assert.equal(request.params.TLD, 'co.uk');
    assert.equal(request.params.Nameservers, 'ns1.mailroom.example,ns2.mailroom.example');
    assert.deepEqual(server.nameservers.get('example.co.uk'), [
      'ns1.mailroom.example',
      'ns2.mailroom.example',
    ]);
  });

  test('a domain outside the account is refused', async () => {
    await rejectsWith(
      registrar().setNameservers('stranger.com', ['ns1.mailroom.example']),
      'provider_rejected',
      /Domain not found \(error 2019166\)/,
    );
  });
});

describe('failures', () => {
  test('throttling by error 500000 is a rate limit, and passes', async () => {
    server.throttleNext(1);
    await rejectsWith(registrar().verify(), 'provider_rate_limited', /Too many requests \(error 500000\)/);
    await registrar().verify();
  });

  test('throttling by HTTP 405 is a rate limit', async () => {
    server.throttleNext(1, 'http405');
    await rejectsWith(registrar().check(['any.com']), 'provider_rate_limited', /HTTP 405/);
  });

  test('an address nobody listens on is unavailable', async () => {
    const fake = await startFakeServer(() => {});
    await fake.close();
    await rejectsWith(
      registrar({ apiUrl: fake.url }).verify(),
      'provider_unavailable',
      /could not be reached/,
    );
  });

  test('a server answering garbage is unavailable', async () => {
    const fake = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Service Unavailable');
    });
    try {
      await rejectsWith(registrar({ apiUrl: fake.url }).verify(), 'provider_unavailable', /not XML/);
    } finally {
      await fake.close();
    }
  });

  test('well-formed XML that is not an ApiResponse is unavailable', async () => {
    const fake = await startFakeServer((_req, res) =>
      res.writeHead(200).end('<html><body>maintenance</body></html>'),
    );
    try {
      await rejectsWith(
        registrar({ apiUrl: fake.url }).verify(),
        'provider_unavailable',
        /without an ApiResponse/,
      );
    } finally {
      await fake.close();
    }
  });

  test('Namecheap text that echoes the API key is redacted', async () => {
    const fake = await startFakeServer((_req, res) => {
      res
        .writeHead(200)
        .end(
          '<?xml version="1.0" encoding="utf-8"?><ApiResponse Status="ERROR"><Errors>' +
            `<Error Number="1011102">Key ${server.apiKey} is not enabled</Error></Errors></ApiResponse>`,
        );
    });
    try {
      await rejectsWith(
        registrar({ apiUrl: fake.url }).verify(),
        'provider_auth_failed',
        /Key \[redacted\] is not/,
      );
    } finally {
      await fake.close();
    }
  });

  test('an HTTP error is unavailable', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(503).end());
    try {
      await rejectsWith(
        registrar({ apiUrl: fake.url }).check(['any.com']),
        'provider_unavailable',
        /HTTP 503/,
      );
    } finally {
      await fake.close();
    }
  });

  test('silence past the timeout is unavailable, and a registration says it may have gone through', async () => {
    const fake = await startFakeServer(() => {});
    try {
      const slow = registrar({ apiUrl: fake.url, timeoutMs: 200 });
      await rejectsWith(slow.verify(), 'provider_unavailable', /did not answer within/);
      await rejectsWith(
        slow.register({ name: 'slow.com', years: 1, contact }),
        'provider_unavailable',
        /may still have gone through/,
      );
    } finally {
      await fake.close();
    }
  });
});
