// The wording of phishing (English): requests for credentials, pressure and threats, and the pretexts
// that carry them (an unusual sign-in, an expiring password, a held parcel). Phrases are patterns with
// slack: a few words may stand between the key words ("verify the details of your account"), any
// punctuation or line break between words, and look-alike letters from other scripts read as Latin.
import type { AnalysisInput } from '../input.ts';
import type { ThreatFinding, ThreatFindingCode, ThreatSeverity } from './findings.ts';
import { foldLetters } from './lookalike.ts';

// Between two key words: up to three other words.
const SLACK = "(?:\\W+[a-z0-9'’]+){0,3}\\W+";
// The same, but naming whose it is: "verify your account", not "verify the client's identity".
const POSSESSED = "(?:\\W+[a-z0-9'’]+){0,3}\\W+(?:your|ur|my|our)(?:\\W+[a-z0-9'’]+){0,2}\\W+";

/** A phrase pattern: ` ~ ` is the slack, ` ^ ` the possessive slack, a space any run of non-word characters. */
function phrase(source: string): string {
  return source.replaceAll(' ~ ', SLACK).replaceAll(' ^ ', POSSESSED).replaceAll(' ', '\\W+');
}

interface PhraseSet {
  code: ThreatFindingCode;
  severity: ThreatSeverity;
  label: string;
  pattern: RegExp;
  /** Phrases that say the opposite ("we will never ask for your password") are not requests. */
  skipNegated: boolean;
}

function phraseSet(
  code: ThreatFindingCode,
  severity: ThreatSeverity,
  label: string,
  phrases: string[],
  skipNegated = false,
): PhraseSet {
  const body = phrases.map((p) => `(?:${phrase(p)})`).join('|');
  return { code, severity, label, pattern: new RegExp(`\\b(?:${body})\\b`, 'g'), skipNegated };
}

const PHRASE_SETS: PhraseSet[] = [
  phraseSet(
    'credential_request',
    'medium',
    'Asks for credentials or account details',
    [
      '(verify|confirm|validate|reconfirm|revalidate|authenticate|update|reactivate|re-activate|unlock|restore|unfreeze) ^ ' +
        '(account|accounts|identity|credentials|login|log-in|sign-in|password|billing|payment details|payment information|' +
        'payment method|banking details|bank details|card details|mailbox|email account|webmail)',
      '(enter|provide|submit|re-enter|reenter|type|share|send|reply with|input) ~ (password|passcode|credentials|' +
        'login details|login information|pin|social security number|ssn|card number|card details|cvv|cvc|' +
        'security code|one-time code|verification code|bank details|banking details|payment details|billing details)',
      '(sign|log)\\W?(in|on) ~ (verify|confirm|restore|unlock|reactivate|avoid|prevent|validate|review and confirm)',
      '(click|tap|follow|use|open) ~ (link|button|here|below|portal|page) ~ (verify|confirm|validate|restore|unlock|reactivate|re-?activate|update your (account|password|payment|billing))',
      'keep (your|the) (same|current|existing|old) password',
      '(account|mailbox|identity|email|profile) (verification|validation|confirmation|re-verification|upgrade) ~ (required|needed|pending|is required|necessary)',
    ],
    true,
  ),
  phraseSet('security_alert_lure', 'low', 'Uses a security or delivery pretext', [
    '(unusual|suspicious|unauthori[sz]ed|unrecogni[sz]ed|irregular|strange|unknown) ~ (sign\\W?in|log\\W?in|activity|access|attempt|attempts|transaction|payment|device)',
    'password ~ (expire|expires|expiring|expired|expiration)',
    '(mailbox|inbox|email storage|storage|quota) ~ (full|exceeded|limit|capacity|over quota|almost full)',
    '(pending|held|undelivered|blocked|incoming|suspended|quarantined) (messages|emails|mails|mail)',
    '(package|parcel|shipment|delivery|consignment) ~ (on hold|held|could not be delivered|undeliverable|failed|unsuccessful|suspended|returned|awaiting payment)',
    '(invoice|payment|transaction|subscription|renewal) ~ (overdue|declined|failed|unsuccessful|on hold|past due|was rejected)',
    'shared ~ (document|file|files|folder|invoice) with you',
    '(voicemail|voice message|fax) ~ (received|waiting|attached|pending)',
    '(tax )?refund ~ (pending|approved|available|eligible|awaiting)',
    '(buy|purchase|get|pick up) ~ gift\\W?cards?',
  ]),
  phraseSet('urgency_pressure', 'low', 'Presses for haste or threatens loss', [
    'within (\\d+|one|two|three|twelve|twenty\\W?four|forty\\W?eight|seventy\\W?two) (hours?|hrs?|days?|minutes?|business days?)',
    '(account|access|mailbox|service|card|profile|membership|subscription|email|password) ~ (be )?(suspended|locked|disabled|closed|terminated|deactivated|limited|restricted|blocked|deleted|frozen|on hold|cancel+ed)',
    '(failure|fail|failing) to (verify|confirm|comply|update|respond|act|complete|do so)',
    'final (notice|warning|reminder|attempt)',
    '(immediate|urgent|prompt) (action|attention|response|verification|payment)',
    'act (now|immediately|today|fast|quickly)',
    '(lose|lost|losing|loss of) (access|your account|all (your )?(data|files|emails|messages))',
    '(expires?|expiring) (today|tonight|in \\d+ (hours?|minutes?))',
    'urgent(ly)?',
    '(wire|bank|payment) transfer ~ (today|urgently|immediately|before|asap|right away)',
  ]),
];

const NEGATION_BEFORE =
  /\b(never|not|don't|won't|doesn't|do not|will not|cannot|can't|shouldn't)\W+(?:[a-z']+\W+){0,3}$/;
const CLAUSE_END = /[.!?;:\n]/;

/** "We will never ask you to enter your password": a negation earlier in the same clause. */
function negated(text: string, at: number): boolean {
  let start = Math.max(0, at - 40);
  for (let i = at - 1; i >= start; i--) {
    if (CLAUSE_END.test(text[i])) {
      start = i + 1;
      break;
    }
  }
  return NEGATION_BEFORE.test(text.slice(start, at));
}
// Phishing says what it wants early; the scan stops after this much text to keep long mail cheap.
const SCANNED_CHARACTERS = 20_000;
const QUOTES_PER_FINDING = 3;

export function languageFindings(input: AnalysisInput): ThreatFinding[] {
  const text = foldLetters(`${input.subject}\n${input.text}`.slice(0, SCANNED_CHARACTERS));
  const findings: ThreatFinding[] = [];
  for (const set of PHRASE_SETS) {
    const quotes: string[] = [];
    let count = 0;
    set.pattern.lastIndex = 0;
    for (let match = set.pattern.exec(text); match; match = set.pattern.exec(text)) {
      if (set.skipNegated && negated(text, match.index)) continue;
      count++;
      const quote = match[0].replace(/\s+/g, ' ');
      if (quotes.length < QUOTES_PER_FINDING && !quotes.includes(quote)) quotes.push(quote);
    }
    if (count === 0) continue;
    findings.push({
      code: set.code,
      severity: set.severity,
      evidence: `${set.label}: ${quotes.map((q) => `"${q}"`).join(', ')}`,
      detail: { phrases: count },
    });
  }
  return findings;
}
