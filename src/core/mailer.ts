// Mail the platform itself sends (verification, password reset, invitations). The outbound mail module
// will provide a transport that queues real mail; until then the outbox mailer writes each message as an
// .eml file (mode 0600) in the data dir and logs where, never what: the messages hold secret tokens.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
}

export class OutboxMailer implements Mailer {
  readonly #dir: string;
  readonly #log: Logger;

  constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.#log = log;
  }

  async send(mail: OutgoingMail): Promise<void> {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const file = path.join(
      this.#dir,
      `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID()}.eml`,
    );
    const message = [
      `To: ${mail.to}`,
      `Subject: ${mail.subject}`,
      `Date: ${new Date().toUTCString()}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      mail.text,
      '',
    ].join('\r\n');
    writeFileSync(file, message, { mode: 0o600, flag: 'wx' });
    this.#log.info({ to: mail.to, subject: mail.subject, file }, 'system mail written to the outbox');
  }
}
