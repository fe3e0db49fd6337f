// Phishing and risky-attachment detection: each finding on a crafted message and its clean twin, the
// verdict's thresholds, real archives and Office documents, and the labelled fixture set's shape.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type AnalysisInput, analysisInputFromRaw } from '../../../src/modules/intelligence/input.ts';
import { BRANDS } from '../../../src/modules/intelligence/threats/brands.ts';
import {
  detectThreats,
  PHISHING_SCORE,
  SUSPICIOUS_SCORE,
  THREAT_FINDING_CODES,
  type ThreatFindingCode,
  type ThreatReport,
} from '../../../src/modules/intelligence/threats/index.ts';
import { findLookalike, protectedDomains } from '../../../src/modules/intelligence/threats/lookalike.ts';
import {
  legacyWordDocument,
  pdf,
  peHeader,
  wordDocument,
  workbook,
} from '../../fixtures/intelligence/phishing/documents.ts';
import { buildZip } from '../../fixtures/intelligence/phishing/zip.ts';

const CONTEXT = { organizationDomains: ['northwind.com'] };
const FIXTURES = 'test/fixtures/intelligence/phishing';

function message(fields: Partial<AnalysisInput>): AnalysisInput {
  return {
    headers: [],
    from: { name: 'Sender', address: 'sender@crestline-supply.com' },
    replyTo: [],
    to: [{ name: '', address: 'dana.whitfield@northwind.com' }],
    cc: [],
    returnPath: null,
    subject: 'Hello',
    date: new Date('2026-02-03T09:00:00Z'),
    text: 'Hello, see you on Monday.',
    html: null,
    attachments: [],
    authentication: {},
    ...fields,
  };
}

function attachment(filename: string, content: Buffer, contentType = 'application/octet-stream') {
  return { filename, contentType, size: content.length, content };
}

function withCode(report: ThreatReport, code: ThreatFindingCode) {
  return report.findings.filter((f) => f.code === code);
}

async function detect(fields: Partial<AnalysisInput>): Promise<ThreatReport> {
  return detectThreats(message(fields), CONTEXT);
}

interface FindingCase {
  code: ThreatFindingCode;
  what: string;
  crafted: Partial<AnalysisInput>;
  twin: Partial<AnalysisInput>;
  evidence: RegExp;
}

const page = (body: string) => `<html><body>${body}</body></html>`;

const CASES: FindingCase[] = [
  {
    code: 'display_name_brand_mismatch',
    what: 'a brand name on an address that is not the brand’s',
    crafted: { from: { name: 'PayPal Service', address: 'service@billing-centre.example.com' } },
    twin: { from: { name: 'PayPal Service', address: 'service@mail.paypal.com' } },
    evidence: /"PayPal Service" claims PayPal.*billing-centre\.example\.com/,
  },
  {
    code: 'display_name_address_mismatch',
    what: 'a display name that is another address',
    crafted: { from: { name: 'service@paypal.com', address: 'notices@freemail-box.net' } },
    twin: { from: { name: 'service@paypal.com', address: 'service@paypal.com' } },
    evidence: /shows service@paypal\.com, but the message is from notices@freemail-box\.net/,
  },
  {
    code: 'confusable_domain',
    what: 'a Cyrillic homoglyph sender domain, decoded from punycode',
    crafted: { from: { name: 'Billing', address: 'billing@xn--pypal-4ve.com' } },
    twin: { from: { name: 'Billing', address: 'billing@paypal.com' } },
    evidence: /"pаypal\.com" \(xn--pypal-4ve\.com\) imitates paypal\.com \(PayPal\)/,
  },
  {
    code: 'confusable_domain',
    what: 'rn written for m in a link',
    crafted: { html: page('<a href="https://login.rnicrosoft.com/x">Sign in</a>') },
    twin: { html: page('<a href="https://login.microsoft.com/x">Sign in</a>') },
    evidence: /Link domain "login\.rnicrosoft\.com" imitates microsoft\.com/,
  },
  {
    code: 'lookalike_domain',
    what: 'one edit from the organisation’s own domain',
    crafted: { from: { name: 'Jorge Salcedo', address: 'jorge@nortwind.com' } },
    twin: { from: { name: 'Jorge Salcedo', address: 'jorge@northwind.com' } },
    evidence: /"nortwind\.com" imitates northwind\.com \(your organisation\) with a small spelling change/,
  },
  {
    code: 'brand_embedded_domain',
    what: 'the real domain placed in front of an unrelated one',
    crafted: { html: page('<a href="https://www.paypal.com.account-review.net/">Review</a>') },
    twin: { html: page('<a href="https://www.paypal.com/account-review">Review</a>') },
    evidence:
      /"www\.paypal\.com\.account-review\.net" imitates paypal\.com \(PayPal\) by placing the real domain/,
  },
  {
    code: 'link_text_mismatch',
    what: 'link text showing one domain over a link to another',
    crafted: {
      html: page('<a href="https://secure-login.example-host.net/x">https://www.chase.com/login</a>'),
    },
    twin: { html: page('<a href="https://secure.chase.com/x">https://www.chase.com/login</a>') },
    evidence:
      /Link text shows "https:\/\/www\.chase\.com\/login" but the link goes to secure-login\.example-host\.net/,
  },
  {
    code: 'ip_address_link',
    what: 'a link to a bare public IP address',
    crafted: { text: 'Sign in at http://203.0.113.9/webmail/ to continue.' },
    twin: { text: 'Sign in at https://mail.crestline-supply.com/webmail/ to continue.' },
    evidence: /bare IP address: http:\/\/203\.0\.113\.9\/webmail\//,
  },
  {
    code: 'url_shortener_link',
    what: 'a link through a URL shortener',
    crafted: { text: 'Our spring catalogue: https://bit.ly/3abcXYZ' },
    twin: { text: 'Our spring catalogue: https://www.crestline-supply.com/catalogue' },
    evidence: /URL shortener bit\.ly: https:\/\/bit\.ly\/3abcXYZ/,
  },
  {
    code: 'html_form',
    what: 'a form with a password field in the body',
    crafted: {
      html: page('<form action="https://collect.example.net/p"><input type="password" name="pw"></form>'),
    },
    twin: {
      html: page('<p>Reset your password on the <a href="https://crestline-supply.com/reset">site</a>.</p>'),
    },
    evidence: /form with a password field sent to https:\/\/collect\.example\.net\/p/,
  },
  {
    code: 'reply_to_misaligned',
    what: 'Reply-To on another domain',
    crafted: { replyTo: [{ name: '', address: 'accounts.crestline@outlook.com' }] },
    twin: { replyTo: [{ name: '', address: 'accounts@crestline-supply.com' }] },
    evidence:
      /Reply-To accounts\.crestline@outlook\.com is on outlook\.com, but From is on crestline-supply\.com/,
  },
  {
    code: 'return_path_misaligned',
    what: 'Return-Path on another domain',
    crafted: { returnPath: 'bounce-71@mailer-relay.net' },
    twin: { returnPath: 'bounces@em.crestline-supply.com' },
    evidence: /Return-Path bounce-71@mailer-relay\.net is on mailer-relay\.net/,
  },
  {
    code: 'dmarc_fail',
    what: 'a DMARC failure',
    crafted: { authentication: { spf: 'fail', dmarc: 'fail' } },
    twin: { authentication: { spf: 'pass', dmarc: 'pass' } },
    evidence: /DMARC failed for the From domain crestline-supply\.com/,
  },
  {
    code: 'credential_request',
    what: 'a request to verify the account',
    crafted: { text: 'Please verify your account details to keep your access.' },
    twin: { text: 'We will never ask you to verify your account details by email.' },
    evidence: /Asks for credentials or account details: "verify your account"/,
  },
  {
    code: 'urgency_pressure',
    what: 'a deadline and a threat',
    crafted: { text: 'Respond within 24 hours or your account will be suspended.' },
    twin: { text: 'Your order ships on Tuesday; we will email the tracking number.' },
    evidence: /Presses for haste or threatens loss: "within 24 hours", "account will be suspended"/,
  },
  {
    code: 'security_alert_lure',
    what: 'an unusual sign-in pretext',
    crafted: { text: 'We detected unusual sign-in activity on your mailbox.' },
    twin: { text: 'We detected that the agenda for Monday changed.' },
    evidence: /security or delivery pretext: "unusual sign-in activity"/,
  },
  {
    code: 'credential_request_offsite_link',
    what: 'a credential request linking away from the sender',
    crafted: { text: 'Please confirm your identity here: https://verify-portal.example-host.net/id' },
    twin: { text: 'Please confirm your identity here: https://www.crestline-supply.com/id' },
    evidence: /links to example-host\.net, not the sender's own domain crestline-supply\.com/,
  },
  {
    code: 'executable_attachment',
    what: 'an .exe attachment',
    crafted: { attachments: [attachment('setup_invoice.exe', peHeader())] },
    twin: { attachments: [attachment('invoice.pdf', pdf(['Invoice 1']), 'application/pdf')] },
    evidence: /Attachment "setup_invoice\.exe" \.exe runs as a program/,
  },
  {
    code: 'executable_attachment',
    what: 'a Windows program named like a PDF',
    crafted: { attachments: [attachment('statement.pdf', peHeader(), 'application/pdf')] },
    twin: { attachments: [attachment('statement.pdf', pdf(['Statement']), 'application/pdf')] },
    evidence: /"statement\.pdf" is a Windows program \(MZ\/PE header\)/,
  },
  {
    code: 'html_attachment',
    what: 'an HTML attachment with a login form',
    crafted: {
      attachments: [
        attachment('message.html', Buffer.from('<form><input type="password"></form>'), 'text/html'),
      ],
    },
    twin: { attachments: [attachment('message.txt', Buffer.from('<form> is an HTML tag.'), 'text/plain')] },
    evidence: /"message\.html" \.html opens in a browser and holds a form/,
  },
  {
    code: 'macro_document',
    what: 'a .docm with a VBA project',
    crafted: { attachments: [attachment('order.docm', wordDocument(['Order'], { macro: true }))] },
    twin: { attachments: [attachment('order.docx', wordDocument(['Order']))] },
    evidence: /"order\.docm" is an Office document with a VBA macro project \(word\/vbaProject\.bin\)/,
  },
  {
    code: 'double_extension',
    what: 'a decoy .pdf before .exe',
    crafted: { attachments: [attachment('invoice.pdf.exe', peHeader())] },
    twin: { attachments: [attachment('invoice.2026.pdf', pdf(['Invoice']), 'application/pdf')] },
    evidence: /"invoice\.pdf\.exe" hides \.exe behind \.pdf/,
  },
  {
    code: 'archive_risky_content',
    what: 'a zip holding a script',
    crafted: {
      attachments: [attachment('docs.zip', buildZip([{ name: 'readme.vbs', content: 'WScript.Echo 1' }]))],
    },
    twin: { attachments: [attachment('docs.zip', buildZip([{ name: 'readme.txt', content: 'hello' }]))] },
    evidence: /Archive "docs\.zip" holds "readme\.vbs", which \.vbs runs as a program/,
  },
  {
    code: 'encrypted_archive',
    what: 'a password-protected zip',
    crafted: {
      attachments: [
        attachment('scan.zip', buildZip([{ name: 'scan.pdf', content: pdf(['Scan']) }], { password: 'x1' })),
      ],
    },
    twin: { attachments: [attachment('scan.zip', buildZip([{ name: 'scan.pdf', content: pdf(['Scan']) }]))] },
    evidence: /"scan\.zip" is password-protected \(1 encrypted entry: "scan\.pdf"\)/,
  },
  {
    code: 'uninspectable_archive',
    what: 'a damaged zip',
    crafted: {
      attachments: [
        attachment('files.zip', Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(64)])),
      ],
    },
    twin: { attachments: [attachment('files.zip', buildZip([{ name: 'a.txt', content: 'a' }]))] },
    evidence: /Archive "files\.zip" could not be fully checked: files\.zip could not be read as a zip/,
  },
];

describe('each finding fires on its crafted message and not on its clean twin', () => {
  for (const c of CASES) {
    it(`${c.code}: ${c.what}`, async () => {
      const crafted = await detect(c.crafted);
      const hits = withCode(crafted, c.code);
      assert.ok(hits.length > 0, `${c.code} missing; got ${JSON.stringify(crafted.findings, null, 1)}`);
      assert.ok(
        hits.some((f) => c.evidence.test(f.evidence)),
        `evidence ${c.evidence} not in ${hits.map((f) => f.evidence).join(' | ')}`,
      );
      const twin = await detect(c.twin);
      assert.deepEqual(withCode(twin, c.code), [], `${c.code} fired on the clean twin`);
    });
  }

  it('covers every finding code', () => {
    assert.deepEqual([...new Set(CASES.map((c) => c.code))].sort(), [...THREAT_FINDING_CODES].sort());
  });
});

describe('lookalike domains', () => {
  const guard = protectedDomains(['northwind.com']);

  it('never flags a brand’s own domains or their subdomains', () => {
    for (const brand of BRANDS) {
      for (const domain of brand.domains) {
        for (const host of [domain, `mail.${domain}`, `login.secure.${domain}`]) {
          assert.equal(findLookalike(host, guard), null, `${host} (${brand.name}) flagged`);
        }
      }
    }
    for (const host of ['amazon.co.uk', 'www.google.de', 'northwind.com', 'intranet.northwind.com']) {
      assert.equal(findLookalike(host, guard), null, host);
    }
  });

  it('catches digit, rn→m and Greek substitutions, typos and a changed suffix', () => {
    const cases: Array<[string, string, string]> = [
      ['paypa1.com', 'paypal.com', 'character_substitution'],
      ['g00gle.com', 'google.com', 'character_substitution'],
      ['arnazon.com', 'amazon.com', 'character_substitution'],
      ['xn--bay-3xc.com', 'ebay.com', 'homoglyph'],
      ['micorsoft.com', 'microsoft.com', 'edit_distance'],
      ['wellsfarqo.com', 'wellsfargo.com', 'edit_distance'],
      ['northwind.co', 'northwind.com', 'other_suffix'],
      ['paypal.tk', 'paypal.com', 'other_suffix'],
      ['paypal-resolution-center.com', 'paypal.com', 'embedded_name'],
      ['mail.northwind.com-secure.net', 'northwind.com', 'subdomain'],
    ];
    for (const [host, imitates, method] of cases) {
      const match = findLookalike(host, guard);
      assert.ok(match, `${host} not flagged`);
      assert.equal(match.imitates, imitates, host);
      assert.equal(match.method, method, host);
    }
  });

  it('leaves unrelated and ordinary-word domains alone', () => {
    for (const host of [
      'crestline-supply.com',
      'slack.net',
      'xn--stadtblatt-mnchen-e3b.de',
      'harbourpost.com',
    ]) {
      assert.equal(findLookalike(host, guard), null, host);
    }
  });

  it('checks a URL carried in a redirector’s query', async () => {
    const report = await detect({
      html: page('<a href="https://www.google.com/url?q=https://paypa1-help.com/case&sa=D">Resolve</a>'),
    });
    assert.ok(
      report.findings.some(
        (f) =>
          f.code === 'confusable_domain' &&
          /Redirect target in a link domain "paypa1-help\.com"/.test(f.evidence),
      ),
      JSON.stringify(report.findings),
    );
  });
});

describe('links', () => {
  it('treats newsletter click tracking on the sender’s own domain as routine', async () => {
    const report = await detect({
      from: { name: 'The Harbour Post', address: 'newsletter@harbourpost.com' },
      html: page(
        '<a href="https://click.harbourpost.com/c/1?u=https%3A%2F%2Fwww.harbourpost.com%2Fstory">harbourpost.com/story</a>',
      ),
    });
    assert.deepEqual(report.findings, []);
    assert.equal(report.verdict, 'clean');
  });

  it('reads an IP written as one number as disguised', async () => {
    const report = await detect({ text: 'Log in: http://3325256812/login' });
    const [finding] = withCode(report, 'ip_address_link');
    assert.equal(finding.severity, 'high');
    assert.match(finding.evidence, /written as "3325256812"/);
    assert.equal(finding.detail?.ip, '198.51.100.108');
  });

  it('rates an intranet IP link low', async () => {
    const report = await detect({
      from: { name: 'Priya', address: 'priya@northwind.com' },
      text: 'Dashboard: http://10.20.0.15:3000/d/ingest',
    });
    assert.equal(withCode(report, 'ip_address_link')[0].severity, 'low');
    assert.equal(report.verdict, 'clean');
  });
});

describe('verdict', () => {
  it('names its thresholds and keeps a weak finding alone from phishing', async () => {
    assert.ok(SUSPICIOUS_SCORE < PHISHING_SCORE);
    const misaligned = await detect({
      replyTo: [{ name: '', address: 'help@zendesk-tickets.net' }],
      returnPath: 'bounce@relay-mailer.net',
    });
    assert.equal(misaligned.verdict, 'clean');
    const shortened = await detect({
      text: 'Slides: https://bit.ly/3slides and https://tinyurl.com/more-slides',
    });
    assert.equal(shortened.score, 1, 'a code counts once however many links share it');
    assert.equal(shortened.verdict, 'clean');
    const medium = await detect({ authentication: { dmarc: 'fail' } });
    assert.equal(medium.verdict, 'suspicious');
  });

  it('adds findings up to phishing', async () => {
    const report = await detect({
      from: { name: 'PayPal', address: 'service@account-services.example-host.net' },
      text: 'Please confirm your identity within 24 hours: https://account-services.example-host.net/login',
    });
    assert.equal(report.verdict, 'phishing');
    assert.ok(report.score >= PHISHING_SCORE);
    assert.deepEqual(
      report.findings.map((f) => f.code),
      ['display_name_brand_mismatch', 'credential_request', 'urgency_pressure'],
    );
  });

  it('weighs the wording of an authenticated brand’s own mail lightly', async () => {
    const fields: Partial<AnalysisInput> = {
      from: { name: 'Netflix', address: 'info@account.netflix.com' },
      text: 'Please update your payment details: https://www.netflix.com/YourAccountPayment',
    };
    const authenticated = await detect({ ...fields, authentication: { dmarc: 'pass' } });
    assert.equal(withCode(authenticated, 'credential_request')[0].severity, 'low');
    assert.equal(authenticated.verdict, 'clean');
    const unauthenticated = await detect(fields);
    assert.equal(withCode(unauthenticated, 'credential_request')[0].severity, 'medium');
    // A free mailbox is nobody's own domain, whatever brand runs the service.
    const freemail = await detect({
      from: { name: 'Support', address: 'support.desk@gmail.com' },
      text: 'Please update your payment details.',
      authentication: { dmarc: 'pass' },
    });
    assert.equal(withCode(freemail, 'credential_request')[0].severity, 'medium');
  });
});

describe('archives', () => {
  it('finds a program in a zip inside a zip', async () => {
    const inner = buildZip([
      { name: 'label.pdf', content: pdf(['Label']) },
      { name: 'tools/label.pdf.scr', content: peHeader() },
    ]);
    const outer = buildZip([{ name: 'inner/docs.zip', content: inner }]);
    const report = await detect({ attachments: [attachment('shipment.zip', outer, 'application/zip')] });
    const [finding] = withCode(report, 'archive_risky_content');
    assert.match(
      finding.evidence,
      /"shipment\.zip" holds "inner\/docs\.zip\/tools\/label\.pdf\.scr", which hides \.scr behind \.pdf/,
    );
    assert.equal(report.verdict, 'phishing');
  });

  it('reads names in an encrypted zip without the password', async () => {
    const zip = buildZip([{ name: 'notice.js', content: 'WScript.Echo(1)' }], { password: 'secret' });
    const report = await detect({ attachments: [attachment('notice.zip', zip, 'application/zip')] });
    assert.equal(withCode(report, 'encrypted_archive').length, 1);
    assert.match(withCode(report, 'archive_risky_content')[0].evidence, /holds "notice\.js"/);
  });

  it('passes a zip of documents', async () => {
    const zip = buildZip([
      { name: 'scan_001.pdf', content: pdf(['One']) },
      { name: 'scan_002.pdf', content: pdf(['Two']) },
      { name: 'sheet.xlsx', content: workbook([['a', 'b']]) },
    ]);
    const report = await detect({ attachments: [attachment('scans.zip', zip, 'application/zip')] });
    assert.deepEqual(report.findings, []);
  });

  it('leaves zip-based documents to their format: an EPUB of XHTML chapters is a book', async () => {
    const book = buildZip([
      { name: 'mimetype', content: 'application/epub+zip' },
      { name: 'OEBPS/chapter1.xhtml', content: '<html><body><p>Chapter one</p></body></html>' },
    ]);
    const report = await detect({ attachments: [attachment('handbook.epub', book, 'application/epub+zip')] });
    assert.deepEqual(report.findings, []);
    const renamed = await detect({ attachments: [attachment('handbook.zip', book, 'application/zip')] });
    assert.match(withCode(renamed, 'archive_risky_content')[0].evidence, /holds "OEBPS\/chapter1\.xhtml"/);
  });

  it('notes an archive over the entry cap and still checks the first entries', async () => {
    const entries = Array.from({ length: 1001 }, (_, i) => ({ name: `f${i}.txt`, content: 'x' }));
    entries[3] = { name: 'run.bat', content: 'echo 1' };
    const report = await detect({
      attachments: [attachment('many.zip', buildZip(entries, { store: true }))],
    });
    assert.match(
      withCode(report, 'uninspectable_archive')[0].evidence,
      /holds 1001 entries; only the first 1000/,
    );
    assert.match(withCode(report, 'archive_risky_content')[0].evidence, /"run\.bat"/);
  });
});

describe('macro documents', () => {
  it('finds the VBA project stream in a Word 97 document, whatever its name', async () => {
    for (const name of ['invoice.doc', 'invoice.pdf']) {
      const report = await detect({
        attachments: [attachment(name, legacyWordDocument('Invoice', { macro: true }))],
      });
      const [finding] = withCode(report, 'macro_document');
      assert.ok(finding, name);
      assert.equal(finding.severity, 'high');
      assert.match(finding.evidence, /VBA macro project \(_VBA_PROJECT stream\)/);
    }
    const plain = await detect({ attachments: [attachment('invoice.doc', legacyWordDocument('Invoice'))] });
    assert.deepEqual(plain.findings, []);
  });

  it('opens .xlsm and .docx packages for vbaProject.bin', async () => {
    const macro = await detect({
      attachments: [attachment('model.xlsm', workbook([['x']], { macro: true }))],
    });
    assert.match(withCode(macro, 'macro_document')[0].evidence, /xl\/vbaProject\.bin/);
    const renamed = await detect({
      attachments: [attachment('model.xlsx', workbook([['x']], { macro: true }))],
    });
    assert.equal(withCode(renamed, 'macro_document').length, 1);
    const clean = await detect({ attachments: [attachment('model.xlsx', workbook([['x']]))] });
    assert.deepEqual(clean.findings, []);
  });

  it('weighs a macro workbook from an authenticated colleague as suspicious, not phishing', async () => {
    const report = await detect({
      from: { name: 'Jorge Salcedo', address: 'jorge.salcedo@northwind.com' },
      authentication: { dmarc: 'pass' },
      attachments: [attachment('budget.xlsm', workbook([['x']], { macro: true }))],
    });
    assert.equal(report.verdict, 'suspicious');
  });
});

describe('fixture set', () => {
  const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Array<{
    file: string;
    label: string;
    kind: string;
  }>;

  it('holds at least 100 labelled messages, 40% or more clean, each on disk', () => {
    assert.ok(manifest.length >= 100, `${manifest.length} messages`);
    const clean = manifest.filter((m) => m.label === 'clean').length;
    assert.ok(clean / manifest.length >= 0.4, `${clean} clean of ${manifest.length}`);
    for (const entry of manifest) {
      assert.ok(['phishing', 'clean'].includes(entry.label), entry.file);
      assert.ok(existsSync(path.join(FIXTURES, entry.file)), entry.file);
    }
  });

  it('parses a fixture end to end: the punycode PayPal receipt', async () => {
    const input = await analysisInputFromRaw(
      readFileSync(path.join(FIXTURES, 'phishing-homoglyph-domain-01.eml')),
    );
    const report = await detectThreats(input, CONTEXT);
    assert.equal(report.verdict, 'phishing');
    assert.ok(report.findings.some((f) => f.code === 'confusable_domain' && f.detail?.where === 'From'));
  });
});
