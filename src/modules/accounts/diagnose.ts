// Testing an external account's servers before it is saved, step by step, so that a failure says which
// step failed in words a person can act on: the name does not resolve, nothing listens, the certificate
// is not valid for the name, the login was refused (or the provider wants an app password).
import { promises as dns } from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import {
  CONNECT_TIMEOUT_MS,
  type Credentials,
  imapOptions,
  type ServerSettings,
  smtpOptions,
} from './clients.ts';

export type { Credentials, Security, ServerSettings } from './clients.ts';

export type DiagnosisStage = 'dns' | 'tcp' | 'tls' | 'login';

export type Diagnosis =
  | { ok: true }
  | { ok: false; protocol: 'imap' | 'smtp'; stage: DiagnosisStage; message: string; hint: string };

/** What providers answer when the account password is refused in favour of an app password. */
const APP_PASSWORD = /application-specific password|app password|web login required|less secure/i;

const failed = (
  protocol: 'imap' | 'smtp',
  stage: DiagnosisStage,
  message: string,
  hint: string,
): Diagnosis => ({
  ok: false,
  protocol,
  stage,
  message,
  hint,
});

/** Name, port and certificate; null when all three are fine. */
async function reach(protocol: 'imap' | 'smtp', server: ServerSettings): Promise<Diagnosis | null> {
  if (!net.isIP(server.host)) {
    try {
      await dns.lookup(server.host);
    } catch {
      return failed(
        protocol,
        'dns',
        `${server.host} does not resolve`,
        'Check the server name for typing mistakes.',
      );
    }
  }
  const socket = await connect(server).catch((err: NodeJS.ErrnoException) => err);
  if (socket instanceof Error) {
    const message =
      socket.code === 'ECONNREFUSED'
        ? `Nothing accepts connections on ${server.host}:${server.port}`
        : `${server.host}:${server.port} did not answer (${socket.code ?? socket.message})`;
    return failed(protocol, 'tcp', message, 'Check the port, and that a firewall lets this server reach it.');
  }
  try {
    if (server.security === 'none') return null;
    if (server.security === 'starttls') await upgradeCommand(protocol, socket);
    const error = await handshake(socket, server);
    if (!error) return null;
    return failed(
      protocol,
      'tls',
      `The certificate of ${server.host} is not valid: ${error}`,
      'Use the name the certificate is issued for; turn certificate checks off only for a server you run yourself.',
    );
  } catch (err) {
    return failed(
      protocol,
      'tls',
      `TLS with ${server.host}:${server.port} failed: ${(err as Error).message}`,
      'Check the security setting (SSL/TLS or STARTTLS) for this port.',
    );
  } finally {
    socket.destroy();
  }
}

function connect(server: ServerSettings): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port, timeout: CONNECT_TIMEOUT_MS });
    socket.once('connect', () => resolve(socket));
    socket.once('timeout', () => {
      socket.destroy();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    });
    socket.once('error', reject);
  });
}

/** Reads the greeting and asks for TLS in the protocol's own words (RFC 3501 STARTTLS, RFC 3207). */
async function upgradeCommand(protocol: 'imap' | 'smtp', socket: net.Socket): Promise<void> {
  const lines = lineReader(socket);
  await lines.next(protocol === 'imap' ? /^\* OK/ : /^220 /);
  if (protocol === 'smtp') {
    socket.write('EHLO mailroom.test\r\n');
    await lines.next(/^250 /);
    socket.write('STARTTLS\r\n');
    await lines.next(/^220 /);
  } else {
    socket.write('a STARTTLS\r\n');
    await lines.next(/^a OK/);
  }
  lines.stop();
}

function lineReader(socket: net.Socket) {
  let buffer = '';
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
  };
  socket.on('data', onData);
  return {
    async next(expected: RegExp): Promise<string> {
      const deadline = Date.now() + CONNECT_TIMEOUT_MS;
      for (;;) {
        const end = buffer.indexOf('\r\n');
        if (end >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (expected.test(line)) return line;
          if (/^(\d{3} |[a-z]+ (NO|BAD)|\* BYE)/i.test(line))
            throw new Error(`the server answered: ${line.slice(0, 200)}`);
          continue;
        }
        if (Date.now() > deadline) throw new Error('the server did not answer');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => socket.removeListener('data', onData),
  };
}

/** The certificate's problem, or null when it is valid for the name (or not checked). */
function handshake(socket: net.Socket, server: ServerSettings): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername: net.isIP(server.host) ? undefined : server.host,
      rejectUnauthorized: false,
    });
    secure.once('secureConnect', () => {
      const problem = secure.authorized ? null : String(secure.authorizationError ?? 'not trusted');
      secure.destroy();
      resolve(server.verifyTls ? problem : null);
    });
    secure.once('error', reject);
    secure.setTimeout(CONNECT_TIMEOUT_MS, () => reject(new Error('the handshake did not finish')));
  });
}

/** Tests an IMAP server: reach it, then log in. */
export async function diagnoseImap(server: ServerSettings, credentials: Credentials): Promise<Diagnosis> {
  const unreachable = await reach('imap', server);
  if (unreachable) return unreachable;
  const client = new ImapFlow(imapOptions(server, credentials));
  client.on('error', () => {});
  try {
    await client.connect();
    await client.logout();
    return { ok: true };
  } catch (err) {
    client.close();
    return loginFailure('imap', err as Error & { responseText?: string; authenticationFailed?: boolean });
  }
}

/** Tests an SMTP server: reach it, then log in (without sending). */
export async function diagnoseSmtp(server: ServerSettings, credentials: Credentials): Promise<Diagnosis> {
  const unreachable = await reach('smtp', server);
  if (unreachable) return unreachable;
  const transport = nodemailer.createTransport(smtpOptions(server, credentials));
  try {
    await transport.verify();
    return { ok: true };
  } catch (err) {
    return loginFailure('smtp', err as Error & { response?: string });
  } finally {
    transport.close();
  }
}

function loginFailure(
  protocol: 'imap' | 'smtp',
  err: Error & { responseText?: string; response?: string },
): Diagnosis {
  const said = (err.responseText ?? err.response ?? err.message).slice(0, 300);
  if (APP_PASSWORD.test(said))
    return failed(
      protocol,
      'login',
      `The login was refused: ${said}`,
      'This provider wants an app password: create one in the account’s security settings and use it here.',
    );
  return failed(
    protocol,
    'login',
    `The login was refused: ${said}`,
    'Check the username (often the whole address) and the password.',
  );
}
