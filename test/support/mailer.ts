// A Mailer that keeps what it was given, so tests can read the tokens a person would find in their inbox.
import type { Mailer, OutgoingMail } from '../../src/core/mailer.ts';

export class MemoryMailer implements Mailer {
  readonly sent: OutgoingMail[] = [];

  async send(mail: OutgoingMail): Promise<void> {
    this.sent.push(mail);
  }

  /** The `token:` line of the newest mail to `to` whose subject matches. */
  tokenFor(to: string, subject: RegExp): string {
    const mail = [...this.sent].reverse().find((m) => m.to === to && subject.test(m.subject));
    const match = mail && /token: (\S+)/.exec(mail.text);
    if (!match) throw new Error(`no mail to ${to} matching ${subject}`);
    return match[1];
  }
}
