// TLS material for tests: a self-signed certificate for the given host names. A self-signed
// certificate is its own trust anchor, so a client trusts it by passing the certificate as `ca`.
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface TestTls {
  key: string;
  cert: string;
}

/** A key and a certificate valid for every name (or IP address) in `hosts`; the first is the CN. */
export async function createTestTls(hosts: string[]): Promise<TestTls> {
  const altNames = hosts.map((host) =>
    isIP(host) ? { type: 7 as const, ip: host } : { type: 2 as const, value: host },
  );
  const made = await generate([{ name: 'commonName', value: hosts[0] }], {
    // RSA: selfsigned's EC keys fail to encode with the asn1 library installed here.
    keySize: 2048,
    algorithm: 'sha256',
    // A minute back, so a client whose clock is a little behind still accepts it.
    notBeforeDate: new Date(Date.now() - 60_000),
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { key: made.private, cert: made.cert };
}
