// Messages for the mail-intelligence tests, written out byte for byte (CRLF) so that what the analysis
// reads is what the test wrote: ham a person would write, clear spam, brand-lookalike phishing, a
// cold-outreach campaign the shipped model lets through until it is taught, invoices, German mail, and
// the antivirus and anti-spam test strings.

export interface Composed {
  /** The envelope sender (and the From address). */
  from: string;
  to: string;
  subject: string;
  /** Without angle brackets, as GET /v1/messages shows `message_id_header`. */
  messageId: string;
  raw: string;
}

/** The standard antivirus test file (eicar.org), 68 bytes. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
/** The standard anti-spam test string (spamassassin.apache.org/gtube). */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

/** A message from header lines and a body; `Message-ID`, `To` and `MIME-Version` are added. */
export function compose(input: {
  from: string;
  fromName?: string;
  to: string;
  subject: string;
  id: string;
  headers?: string[];
  contentType?: string;
  body: string;
}): Composed {
  const domain = input.from.split('@')[1]!;
  const messageId = `${input.id}@${domain}`;
  const lines = [
    `From: ${input.fromName ? `${input.fromName} <${input.from}>` : input.from}`,
    `To: ${input.to}`,
    `Subject: ${input.subject}`,
    `Message-ID: <${messageId}>`,
    'Date: Mon, 02 Feb 2026 08:15:00 +0000',
    ...(input.headers ?? []),
    'MIME-Version: 1.0',
    `Content-Type: ${input.contentType ?? 'text/plain; charset=utf-8'}`,
    '',
    input.body,
  ];
  const raw = `${lines
    .join('\n')
    .replace(/\r?\n/g, '\r\n')
    .replace(/(\r\n)*$/, '')}\r\n`;
  return { from: input.from, to: input.to, subject: input.subject, messageId, raw };
}

/** A team member's meeting agenda: English, positive, primary, with a person, an amount and a phone number. */
export function meetingAgenda(to: string, id: string, subject = "Agenda for Thursday's planning meeting") {
  return compose({
    from: 'sarah.collins@example.com',
    fromName: 'Sarah Collins',
    to,
    subject,
    id,
    body: `Hi all,

For Thursday's planning meeting I'd like to cover three things: the status of the migration to the
new build server, who is on call over the holidays, and whether we move the release to the week
after. Maria Lopez from Contoso will join us to present the budget of $12,500 for the new servers.
If you have anything else, reply to this thread before Wednesday evening and I'll add it.

The meeting is in the usual room; I'll send the notes afterwards. Call me on +1 415 555 0134 if needed.

Thanks, this is great work everyone!

Sarah
`,
  });
}

/** A friend's reply about the weekend: clear ham. */
export function weekendPlans(to: string, id: string, subject = 'Re: weekend') {
  return compose({
    from: 'mark.obrien@example.net',
    fromName: 'Mark',
    to,
    subject,
    id,
    headers: ['In-Reply-To: <p0@example.net>'],
    body: `Sounds good. I can pick you up around ten on Saturday, the forecast says it should stay dry
until the afternoon. Bring the spare tent poles if you still have them, mine are bent.

> Are we still on for the hike this weekend?

Mark
`,
  });
}

/** Work-from-home money spam, in shouting HTML. */
export function moneySpam(to: string, id: string, subject = 'Make $5,000 a week from home - GUARANTEED!!!') {
  return compose({
    from: 'success777@hotmail.com',
    fromName: '"Financial Freedom"',
    to,
    subject,
    id,
    headers: ['X-Priority: 1'],
    contentType: 'text/html; charset="iso-8859-1"',
    body: `<html><body><font size=4 color=red><b>EARN CASH FROM HOME!!!</b></font><br>
Dear Friend,<br>This is NOT a scam. You can make <b>$5,000 per week</b> working from home with our
proven system. No experience needed! Thousands of people are already earning money. Order now and
receive a FREE bonus report. 100% satisfaction guaranteed or your money back!<br>
<a href="http://www.cash-system-4u.biz/order.html">CLICK HERE TO ORDER NOW</a><br>
To be removed from our mailing list, <a href="http://www.cash-system-4u.biz/remove.html">click here</a>.
</body></html>
`,
  });
}

/** "PayPal" from a lookalike domain asking for the password under a deadline. */
export function paypalPhish(to: string, id: string) {
  return compose({
    from: 'service@paypa1-support.com',
    fromName: 'PayPal',
    to,
    subject: 'Your account access has been limited',
    id,
    contentType: 'text/html; charset=utf-8',
    body: `<html><body><p>Dear Customer,</p><p>We noticed some unusual activity on your PayPal account and, as a
precaution, we've limited what you can do with it.</p>
<p>To restore full access, please confirm your identity and verify your password. This only takes a
couple of minutes.</p>
<p><a href="https://www.paypa1-support.com/signin/restore?case=PP-8841-2201">Log in to PayPal</a></p>
<p>If we do not hear from you within 48 hours, your account will be permanently restricted.</p></body></html>
`,
  });
}

/** A colleague's note in German. */
export function germanNote(to: string, id: string) {
  return compose({
    from: 'jonas.becker@beispiel.de',
    fromName: 'Jonas Becker',
    to,
    subject: 'Unser Treffen am Donnerstag',
    id,
    body: `Hallo zusammen,

ich wollte kurz nachfragen, ob wir uns am Donnerstag um zehn Uhr im Büro treffen können. Wir müssen
noch über die neue Version der Software sprechen und die Aufgaben für die nächste Woche verteilen.
Bitte sagt mir Bescheid, ob euch der Termin passt, sonst suchen wir einen anderen Tag.

Viele Grüße
Jonas
`,
  });
}

const PEOPLE = [
  'Alice',
  'Bob',
  'Carol',
  'Dave',
  'Erin',
  'Frank',
  'Grace',
  'Heidi',
  'Ivan',
  'Judy',
  'Mallory',
  'Niaj',
];
const COMPANIES = ['Northwind', 'Contoso', 'Fabrikam', 'Tailspin', 'Wingtip', 'Litware'];

/**
 * One message of a cold-outreach campaign: the same pitch with another greeting, company, day and
 * sending domain each time. The shipped model lets each through on its own.
 */
export function outreach(i: number, to: string, id: string) {
  const person = PEOPLE[i % PEOPLE.length]!;
  const company = COMPANIES[i % COMPANIES.length]!;
  return compose({
    from: `daniel.reyes@${['getleadflow.io', 'leadflow-mail.com', 'leadflowhq.net'][i % 3]}`,
    fromName: 'Daniel Reyes',
    to,
    subject: `Re: ${company} + LeadFlow (${id})`,
    id,
    body: `Hi ${person},

Following up on my note from last week. I work with sales leaders at companies like ${company}
to book more qualified meetings: our team handles prospect research, outreach sequences and
calendar scheduling, and you only pay per meeting held.

Would it make sense to talk for ${10 + (i % 3) * 5} minutes on ${['Tuesday', 'Wednesday', 'Thursday'][i % 3]}? If you're not the right person,
could you point me to whoever owns pipeline generation?

Thanks,
Daniel Reyes
LeadFlow | Pipeline on autopilot
`,
  });
}

const VENDORS = [
  ['Maria Keller', 'Keller Design', 'kellerdesign.example', 'the logo redesign', '1,240.00', 'March'],
  [
    'Tom Price',
    'Price Translations',
    'pricetranslations.example',
    'the German translation of the manual',
    '860.50',
    'April',
  ],
  ['Anna Novak', 'Novak Consulting', 'novakconsulting.example', 'the two workshop days', '2,015.75', 'May'],
  ['Liam Byrne', 'Byrne Photography', 'byrnephoto.example', 'the product photos', '3,470.20', 'June'],
] as const;

/** A freelancer's invoice, one of four vendors. */
export function invoice(i: number, to: string, id: string) {
  const [person, company, domain, what, amount, month] = VENDORS[i % VENDORS.length]!;
  const number = `${month.toLowerCase()}-${2041 + i * 17}`;
  return compose({
    from: `${person.split(' ')[0]!.toLowerCase()}@${domain}`,
    fromName: person,
    to,
    subject: `Invoice ${number} for ${what}`,
    id,
    body: `Hi Sam,

here is my invoice ${number} for ${what} we agreed on in ${month}. The total is EUR ${amount},
payable within 30 days to the account on the invoice. Let me know if anything on it needs changing.

Thanks again for the work,
${person}
${company}
`,
  });
}

/** A message with one attachment (base64), e.g. the EICAR test file. */
export function withAttachment(to: string, id: string, filename: string, content: string) {
  const boundary = 'intel-boundary-7f3a';
  return compose({
    from: 'alice@example.com',
    fromName: 'Alice',
    to,
    subject: `The file you asked for (${id})`,
    id,
    contentType: `multipart/mixed; boundary="${boundary}"`,
    body: [
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Here is the file from yesterday, as promised.',
      `--${boundary}`,
      `Content-Type: application/octet-stream; name="${filename}"`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${filename}"`,
      '',
      Buffer.from(content).toString('base64'),
      `--${boundary}--`,
      '',
    ].join('\n'),
  });
}
