// Parser combinators over tokens: each rule tries to match at a position and says where it stopped.
// Alternatives take the longest match (the first on a tie), so "March 3rd" wins over "March".
import type { Token, TokenKind } from './tokens.ts';

export interface Match<T> {
  value: T;
  /** Index of the first token after the match. */
  end: number;
}

export type Rule<T> = (tokens: readonly Token[], at: number) => Match<T> | null;

/** One word token whose lower-cased text is one of `forms`. */
export function word(...forms: string[]): Rule<string> {
  const set = new Set(forms);
  return (tokens, at) => {
    const t = tokens[at];
    return t && t.kind === 'word' && set.has(t.lower) ? { value: t.lower, end: at + 1 } : null;
  };
}

/** A fixed run of words, e.g. phrase('on the subject of'). */
export function phrase(text: string): Rule<string> {
  const words = text.split(' ');
  return (tokens, at) => {
    for (let k = 0; k < words.length; k++) {
      const t = tokens[at + k];
      if (t?.kind !== 'word' || t.lower !== words[k]) return null;
    }
    return { value: text, end: at + words.length };
  };
}

export function punct(...chars: string[]): Rule<string> {
  const set = new Set(chars);
  return (tokens, at) => {
    const t = tokens[at];
    return t && t.kind === 'punct' && set.has(t.text) ? { value: t.text, end: at + 1 } : null;
  };
}

export function kind(k: TokenKind): Rule<Token> {
  return (tokens, at) => {
    const t = tokens[at];
    return t && t.kind === k ? { value: t, end: at + 1 } : null;
  };
}

export function token(test: (t: Token) => boolean): Rule<Token> {
  return (tokens, at) => {
    const t = tokens[at];
    return t && test(t) ? { value: t, end: at + 1 } : null;
  };
}

export function seq<T extends unknown[]>(...rules: { [K in keyof T]: Rule<T[K]> }): Rule<T> {
  return (tokens, at) => {
    const values: unknown[] = [];
    let end = at;
    for (const rule of rules as Array<Rule<unknown>>) {
      const m = rule(tokens, end);
      if (!m) return null;
      values.push(m.value);
      end = m.end;
    }
    return { value: values as T, end };
  };
}

/** Longest match among the alternatives; the earliest alternative wins a tie. */
export function alt<T>(...rules: Array<Rule<T>>): Rule<T> {
  return (tokens, at) => {
    let best: Match<T> | null = null;
    for (const rule of rules) {
      const m = rule(tokens, at);
      if (m && (!best || m.end > best.end)) best = m;
    }
    return best;
  };
}

export function opt<T>(rule: Rule<T>): Rule<T | undefined> {
  return (tokens, at) => rule(tokens, at) ?? { value: undefined, end: at };
}

/** Transforms a match's value; returning null rejects the match. */
export function map<T, U>(rule: Rule<T>, fn: (value: T, start: number, end: number) => U | null): Rule<U> {
  return (tokens, at) => {
    const m = rule(tokens, at);
    if (!m) return null;
    const value = fn(m.value, at, m.end);
    return value === null ? null : { value, end: m.end };
  };
}

/** Succeeds only where `rule` would not match, consuming nothing. */
export function not(rule: Rule<unknown>): Rule<undefined> {
  return (tokens, at) => (rule(tokens, at) ? null : { value: undefined, end: at });
}
