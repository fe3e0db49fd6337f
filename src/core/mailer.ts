// Mail the platform itself sends (verification, password reset, invitations). The mail modules will
// provide a transport that queues real mail; until then the log mailer writes each message to the log,
// which is how an operator of a fresh install finds the link.
import type { Logger } from 'pino';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>;
}

export class LogMailer implements Mailer {
  readonly #log: Logger;
  constructor(log: Logger) {
    this.#log = log;
  }
  async send(mail: OutgoingMail): Promise<void> {
    this.#log.info(
      { mail: { to: mail.to, subject: mail.subject, text: mail.text } },
      'outgoing system mail (log mailer)',
    );
  }
}
