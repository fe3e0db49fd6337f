// SPF records (RFC 7208) read the way a receiver will: syntax, the ten-DNS-lookup limit counted
// through every include and redirect, and whether Mailroom's mechanism is among those that pass.
import { isIP } from 'node:net';
import type { DnsAnswer } from '../../core/dns.ts';
import { TXT_KIND } from './records.ts';

/** RFC 7208 §4.6.4: more lookups than this and receivers answer permerror. */
export const SPF_LOOKUP_LIMIT = 10;
const MAX_DEPTH = 10;

const MECHANISMS = new Set(['all', 'include', 'a', 'mx', 'ptr', 'ip4', 'ip6', 'exists']);
const COUNTED = new Set(['include', 'a', 'mx', 'ptr', 'exists']);

export interface SpfTerm {
  qualifier: '+' | '-' | '~' | '?';
  mechanism: string;
  value: string | null;
}

export interface SpfRecord {
  terms: SpfTerm[];
  redirect: string | null;
  errors: string[];
}

export const isSpf = TXT_KIND.spf;

export function parseSpf(txt: string): SpfRecord {
  const [, ...words] = txt.trim().split(/\s+/);
  const record: SpfRecord = { terms: [], redirect: null, errors: [] };
  for (const word of words) {
    const modifier = /^([a-z][a-z0-9_.-]*)=(.*)$/i.exec(word);
    if (modifier) {
      const name = modifier[1].toLowerCase();
      if (name === 'redirect') {
        if (record.redirect !== null) record.errors.push('more than one redirect= modifier');
        record.redirect = modifier[2].toLowerCase();
      }
      continue; // exp= and unknown modifiers are ignored by receivers
    }
    const term = /^([+\-~?]?)([a-z0-9]+)(?::(.*))?$/i.exec(word.replace(/\/\d+(\/\/\d+)?$/, ''));
    const mechanism = term?.[2].toLowerCase() ?? '';
    if (!term || !MECHANISMS.has(mechanism)) {
      record.errors.push(`unknown term "${word}"`);
      continue;
    }
    const value = term[3]?.toLowerCase() ?? null;
    if ((mechanism === 'include' || mechanism === 'exists') && !value) {
      record.errors.push(`${mechanism} needs a domain ("${mechanism}:example.com")`);
    }
    if (mechanism === 'ip4' && (!value || isIP(value) !== 4))
      record.errors.push(`"${word}" is not an IPv4 address`);
    if (mechanism === 'ip6' && (!value || isIP(value) !== 6))
      record.errors.push(`"${word}" is not an IPv6 address`);
    record.terms.push({ qualifier: (term[1] || '+') as SpfTerm['qualifier'], mechanism, value });
  }
  return record;
}

export interface SpfAnalysis {
  lookups: number;
  /** Whether the expected term is reachable, with a passing qualifier, from the record. */
  authorizes: boolean;
  errors: string[];
  warnings: string[];
}

/**
 * Follows includes and redirects through `fetchTxt` (the same resolver the check uses), counting
 * lookups and looking for `expected` (e.g. `include:_spf.mailroom.example` or `a:mx.example.net`).
 */
export async function analyseSpf(
  record: SpfRecord,
  expected: string,
  fetchTxt: (name: string) => Promise<DnsAnswer<string[]>>,
): Promise<SpfAnalysis> {
  const analysis: SpfAnalysis = { lookups: 0, authorizes: false, errors: [...record.errors], warnings: [] };
  const wanted = expected.toLowerCase();
  const seen = new Set<string>();

  const walk = async (spf: SpfRecord, depth: number): Promise<void> => {
    for (const term of spf.terms) {
      if (COUNTED.has(term.mechanism)) analysis.lookups++;
      const text = term.value ? `${term.mechanism}:${term.value}` : term.mechanism;
      if (term.qualifier === '+' && text === wanted) analysis.authorizes = true;
      if (term.mechanism === 'include' && term.value) await follow(term.value, depth, 'include');
      if (term.mechanism === 'all') return; // nothing after "all" is ever evaluated
    }
    if (spf.redirect) {
      analysis.lookups++;
      await follow(spf.redirect, depth, 'redirect');
    }
  };

  const follow = async (name: string, depth: number, via: string): Promise<void> => {
    if (name.includes('%')) return; // macros expand per message; counted, not followed
    if (seen.has(name) || depth >= MAX_DEPTH) {
      analysis.errors.push(`${via}:${name} loops back on itself`);
      return;
    }
    seen.add(name);
    const answer = await fetchTxt(name);
    const found = answer.ok ? answer.records.filter(isSpf) : [];
    if (found.length !== 1) {
      analysis.errors.push(
        found.length > 1
          ? `${via}:${name} has ${found.length} SPF records`
          : `${via}:${name} has no SPF record${answer.ok ? '' : ` (${answer.error.reason})`}`,
      );
      return;
    }
    await walk(parseSpf(found[0]), depth + 1);
  };

  await walk(record, 0);
  const all = record.terms.find((t) => t.mechanism === 'all');
  if (all?.qualifier === '+') analysis.warnings.push('"+all" lets anyone send as this domain');
  if (!all && !record.redirect)
    analysis.warnings.push('no "all" mechanism: unlisted senders get a neutral result');
  return analysis;
}

/** The record with `term` added before its `all` (or at the end), for a person to publish instead. */
export function withTerm(txt: string, term: string): string {
  const words = txt.trim().split(/\s+/);
  const allAt = words.findIndex((w) => /^[+\-~?]?all$/i.test(w));
  if (allAt === -1) return [...words, term].join(' ');
  return [...words.slice(0, allAt), term, ...words.slice(allAt)].join(' ');
}
