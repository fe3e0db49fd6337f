// A Mailer that keeps what it was given, so tests can read the tokens a person would find in their inbox.
import type { Mailer, OutgoingMail } from '../../src/core/mailer.ts';

export class MemoryMailer implements Mailer {
  readonly sent: OutgoingMail[] = [];
  readonly #waiting: { match: (m: OutgoingMail) => boolean; resolve: (m: OutgoingMail) => void }[] = [];

  async send(mail: OutgoingMail): Promise<void> {
    this.sent.push(mail);
    for (const w of this.#waiting.splice(0)) {
      if (w.match(mail)) w.resolve(mail);
      else this.#waiting.push(w);
    }
  }

  /** The `token:` line of the newest mail to `to` whose subject matches. */
  tokenFor(to: string, subject: RegExp): string {
    const mail = [...this.sent].reverse().find((m) => m.to === to && subject.test(m.subject));
    return tokenOf(mail, to, subject);
  }

  /** The token of the next matching mail (mail sent by jobs arrives after the HTTP reply). */
  async nextTokenFor(to: string, subject: RegExp): Promise<string> {
    const mail = await new Promise<OutgoingMail>((resolve) =>
      this.#waiting.push({ match: (m) => m.to === to && subject.test(m.subject), resolve }),
    );
    return tokenOf(mail, to, subject);
  }
}

function tokenOf(mail: OutgoingMail | undefined, to: string, subject: RegExp): string {
  const match = mail && /token: (\S+)/.exec(mail.text);
  if (!match) throw new Error(`no mail to ${to} matching ${subject}`);
  return match[1];
}
