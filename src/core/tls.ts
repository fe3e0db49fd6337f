// The certificate the mail servers offer with STARTTLS: MAILROOM_TLS_CERT/KEY when set, otherwise a
// self-signed one for MAILROOM_HOSTNAME, generated once into the data dir (in memory for tests), so a
// fresh install encrypts from the start. Senders do not validate MX certificates unless the domain
// publishes MTA-STS or DANE; operators who publish those set a real certificate.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TlsMaterial {
  key: string;
  cert: string;
}

export async function loadTls(
  configured: { cert: string; key: string } | null,
  dataDir: string | null,
  hostname: string,
): Promise<TlsMaterial> {
  if (configured)
    return { cert: readFileSync(configured.cert, 'utf8'), key: readFileSync(configured.key, 'utf8') };
  const dir = dataDir && path.join(dataDir, 'tls');
  const certFile = dir && path.join(dir, 'cert.pem');
  const keyFile = dir && path.join(dir, 'key.pem');
  if (certFile && keyFile && existsSync(certFile) && existsSync(keyFile)) {
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  }
  const { generate } = await import('selfsigned');
  const made = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    days: 3650,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
  } as never);
  if (dir && certFile && keyFile) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, made.private, { mode: 0o600 });
    writeFileSync(certFile, made.cert);
  }
  return { cert: made.cert, key: made.private };
}
