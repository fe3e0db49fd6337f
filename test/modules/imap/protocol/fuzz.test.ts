// Random bytes and mutated client commands against the command parser and every argument parser, for a
// bounded time. The PRNG is seeded; a failure names its seed, and IMAP_FUZZ_SEED=<seed> replays it.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  decodeMailboxName,
  encodeMailboxName,
  ImapBadCharsetError,
  ImapSyntaxError,
  listPatternMatcher,
  parseAppend,
  parseAString,
  parseAuthenticate,
  parseCopyMove,
  parseDateTime,
  parseEnable,
  parseFetch,
  parseFlagList,
  parseId,
  parseList,
  parseLogin,
  parseSearch,
  parseSearchDate,
  parseSelect,
  parseSequenceSet,
  parseStatus,
  parseStatusItems,
  parseStore,
  parseUidExpunge,
  quoteAString,
} from '../../../../src/modules/imap/protocol/arguments.ts';
import {
  decodeModifiedUtf7,
  encodeModifiedUtf7,
} from '../../../../src/modules/imap/protocol/modified-utf7.ts';
import {
  type Command,
  CommandParser,
  type ParserEvent,
  type ParserLimits,
  type Token,
} from '../../../../src/modules/imap/protocol/parser.ts';

const SEED = Number(process.env.IMAP_FUZZ_SEED ?? randomInt(2 ** 31));
const LIMITS: ParserLimits = {
  maxLineBytes: 512,
  maxLiteralBytes: 256,
  maxCommandBytes: 2048,
  maxDepth: 8,
  maxTokens: 500,
};

const CORPUS = [
  'A1 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])',
  'A2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)',
  'A3 FETCH 2:4 (ENVELOPE BODYSTRUCTURE BODY[1.2.MIME] BODY.PEEK[TEXT]<0.2048> BINARY[1]<0.10> BINARY.SIZE[2] MODSEQ)',
  'A4 FETCH 1 FULL',
  'A5 SELECT INBOX (QRESYNC (67890007 90060115194045000 41,43:211,214:541 (1:10 41:50)))',
  'A6 EXAMINE "Entw&APw-rfe" (CONDSTORE)',
  'A7 SEARCH OR FROM "a" NOT SEEN SINCE 1-Feb-1994',
  'A8 UID SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 1:5 UID 3:* (DELETED UNANSWERED) TEXT {6}\r\nGrüß',
  'A9 SEARCH HEADER Message-ID "<x@y>" LARGER 100 SMALLER 9000 MODSEQ "/flags/\\\\draft" all 5 KEYWORD $Junk',
  'A10 SEARCH CHARSET ISO-8859-1 SUBJECT x',
  'A11 UID STORE 1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Seen $Forwarded)',
  'A12 STORE 2:4 -FLAGS \\Deleted \\Draft',
  'A13 LIST (SUBSCRIBED) "" ("INBOX" "Sent") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))',
  'A14 LIST "" "*" RETURN (SPECIAL-USE)',
  'A15 LIST (SPECIAL-USE RECURSIVEMATCH) "inbox/" %',
  'A16 STATUS "Sent" (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ SIZE)',
  'A17 APPEND Sent (\\Seen) "17-Jul-1996 02:44:25 -0700" {11}\r\nFrom: a\r\n\r\n (\\Draft) {2+}\r\nhi',
  'A18 APPEND Drafts UTF8 (~{4}\r\n\x00\x01ab)',
  'A19 ENABLE CONDSTORE UTF8=ACCEPT QRESYNC',
  'A20 ID ("name" "iPhone Mail" "version" "19H12" "os" NIL)',
  'A21 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==',
  'A22 UID MOVE 42:44 "Deleted Items"',
  'A23 UID EXPUNGE 3000:3002,3004',
  'A24 LOGIN {5}\r\nalice "p\\"w"',
  'A25 COPY 1:* &ZeVnLIqe-',
  'A26 IDLE',
];

const INSERTS = [
  '{',
  '}',
  '(',
  ')',
  '"',
  '\\',
  '[',
  ']',
  '<',
  '>',
  '\x00',
  '\r',
  '\n',
  '\r\n',
  ' ',
  '*',
  ':',
  ',',
  '.',
  '%',
  '&',
  '~',
  '-',
  '0',
  'NIL',
  '99999999999999999999',
  '4294967296',
  '9223372036854775808',
  '{5}\r\n',
  '{3+}\r\n',
  '~{2}\r\n',
  '{0}\r\n',
  '\xff',
  '\xc3\xbc',
  'BODY[',
  '<0.',
];

/** mulberry32: small, fast, and good enough to pick mutations. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

class Fuzzer {
  readonly random: () => number;

  constructor(seed: number) {
    this.random = prng(seed);
  }

  int(max: number): number {
    return Math.floor(this.random() * max);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Random bytes, as latin1 text, leaning towards the ones that mean something to IMAP. */
  garbage(): string {
    let text = '';
    const length = this.int(120);
    for (let i = 0; i < length; i++)
      text += this.random() < 0.5 ? this.pick(INSERTS) : String.fromCharCode(this.int(256));
    return text;
  }

  /** A corpus line (latin1 text of its UTF-8 bytes) with one to four edits. */
  mutated(): string {
    let text = Buffer.from(this.pick(CORPUS)).toString('latin1');
    for (let edits = 1 + this.int(4); edits > 0; edits--) {
      const at = this.int(text.length + 1);
      const choice = this.int(5);
      if (choice === 0) text = text.slice(0, at) + text.slice(at + 1 + this.int(8));
      else if (choice === 1)
        text = text.slice(0, at) + String.fromCharCode(this.int(256)) + text.slice(at + 1);
      else if (choice === 2)
        text = text.slice(0, at) + text.slice(this.int(text.length)).slice(0, 20) + text.slice(at);
      else if (choice === 3) text = text.slice(0, at) + text.slice(at).toLowerCase();
      else text = text.slice(0, at) + this.pick(INSERTS) + text.slice(at);
    }
    return text;
  }

  /** Feeds the bytes in random pieces. */
  feed(parser: CommandParser, bytes: Buffer): ParserEvent[] {
    const events: ParserEvent[] = [];
    for (let offset = 0; offset < bytes.length; ) {
      const size = this.random() < 0.3 ? 1 : 1 + this.int(64);
      events.push(...parser.push(bytes.subarray(offset, offset + size)));
      offset += size;
    }
    return events;
  }
}

function runFor(ms: number, body: () => void): number {
  const end = performance.now() + ms;
  let runs = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) body();
    runs += 20;
  }
  return runs;
}

/** What the parser makes of one line with its literals, the literals' continuation requests taken as sent. */
function commandsOf(line: string, encoding: BufferEncoding = 'latin1'): Command[] {
  const events = new CommandParser(LIMITS).push(Buffer.from(`${line}\r\n`, encoding));
  return events.flatMap((event) => (event.kind === 'command' ? [event.command] : []));
}

const NIL: Token = { type: 'nil' };
const text = (token: Token | undefined) => parseAString(token ?? NIL);

const ARGUMENT_PARSERS: Record<string, (args: Token[], utf8: boolean) => unknown> = {
  fetch: (args) => parseFetch(args, { uid: false }),
  uidFetch: (args) => parseFetch(args, { uid: true }),
  search: (args) => parseSearch(args),
  store: (args) => parseStore(args),
  select: (args, utf8) => parseSelect(args, { utf8 }),
  list: (args, utf8) => parseList(args, { utf8 }),
  status: (args, utf8) => parseStatus(args, { utf8 }),
  statusItems: (args) => parseStatusItems(args.at(-1) ?? NIL),
  append: (args, utf8) => parseAppend(args, { utf8 }),
  enable: (args) => parseEnable(args),
  id: (args) => parseId(args),
  authenticate: (args) => parseAuthenticate(args),
  login: (args) => parseLogin(args),
  copyMove: (args, utf8) => parseCopyMove(args, { utf8 }),
  uidExpunge: (args) => parseUidExpunge(args),
  flagList: (args) => parseFlagList(args.at(-1) ?? NIL),
  mailbox: (args, utf8) => decodeMailboxName(args[0] ?? NIL, utf8),
  sequenceSet: (args) => parseSequenceSet(text(args[0])),
  dateTime: (args) => parseDateTime(text(args.find((token) => token.type === 'string'))),
  searchDate: (args) => parseSearchDate(text(args.at(-1))),
  modifiedUtf7: (args) => decodeModifiedUtf7(text(args[0])),
};

describe(`IMAP protocol fuzzing (IMAP_FUZZ_SEED=${SEED})`, () => {
  test('push never throws, and after garbage a valid command still parses', () => {
    const fuzz = new Fuzzer(SEED);
    const parser = new CommandParser(LIMITS);
    let input = '';
    const runs = runFor(500, () => {
      input = fuzz.random() < 0.5 ? fuzz.garbage() : fuzz.mutated();
      // A LITERAL+ literal is skipped whole however large; bounded here so the flush below outlasts it.
      input = input.replace(/\{(\d+)\+\}/g, (_, size: string) => `{${Number(size) % 100}+}`);
      if (fuzz.random() < 0.1) parser.expectLine();
      try {
        fuzz.feed(parser, Buffer.from(input, 'latin1'));
        // A literal the garbage announced takes the bytes after it, so the flush is longer than any literal
        // or line in flight; the empty lines after that are ignored.
        fuzz.feed(parser, Buffer.from('\r\n'.repeat(600)));
        const events = fuzz.feed(parser, Buffer.from('Z9 UID NOOP "x"\r\n'));
        assert.deepEqual(events, [
          {
            kind: 'command',
            command: {
              tag: 'Z9',
              name: 'NOOP',
              uid: true,
              args: [{ type: 'string', value: Buffer.from('x'), literal: false }],
              bytes: 17,
            },
          },
        ]);
      } catch (error) {
        assert.fail(`seed ${SEED}, input ${JSON.stringify(input)}: ${(error as Error).stack}`);
      }
    });
    assert.ok(runs > 0);
  });

  test('argument parsers throw nothing but ImapSyntaxError and ImapBadCharsetError', () => {
    const fuzz = new Fuzzer(SEED + 1);
    const succeeded = new Set<string>();
    const check = (line: string) => {
      for (const command of commandsOf(line)) {
        for (const args of [command.args, command.args.slice(1)]) {
          for (const [name, parse] of Object.entries(ARGUMENT_PARSERS)) {
            try {
              parse(args, fuzz.random() < 0.5);
              succeeded.add(name);
            } catch (error) {
              if (error instanceof ImapSyntaxError || error instanceof ImapBadCharsetError) continue;
              assert.fail(`seed ${SEED}, ${name} on ${JSON.stringify(line)}: ${(error as Error).stack}`);
            }
          }
        }
      }
    };
    for (const line of CORPUS) check(Buffer.from(line).toString('latin1'));
    assert.deepEqual(
      Object.keys(ARGUMENT_PARSERS).filter((name) => !succeeded.has(name)),
      [],
      'the corpus reaches every parser',
    );
    runFor(700, () => check(fuzz.mutated()));
  });

  test('round trips: modified UTF-7, quoting and mailbox names; LIST patterns match like a regular expression', () => {
    const fuzz = new Fuzzer(SEED + 2);
    const alphabet = [
      'a',
      'Z',
      '&',
      '-',
      '+',
      ',',
      '/',
      ' ',
      '"',
      '\\',
      '%',
      '*',
      'ü',
      '日',
      '😀',
      '\r',
      '\n',
      '\t',
      'NIL',
      'inbox',
    ];
    const randomText = () => Array.from({ length: fuzz.int(8) }, () => fuzz.pick(alphabet)).join('');
    runFor(300, () => {
      const original = randomText();
      const context = `seed ${SEED}, ${JSON.stringify(original)}`;
      assert.equal(decodeModifiedUtf7(encodeModifiedUtf7(original)), original, context);
      for (const utf8 of [false, true]) {
        const [token] = commandsOf(`A1 X ${quoteAString(original, utf8)}`, 'utf8')[0].args;
        assert.equal(text(token), original, context);
      }
      // Decoding accepts only canonical modified UTF-7, so encoding gives back the same text.
      const wire = Array.from({ length: fuzz.int(10) }, () =>
        fuzz.pick(['&', '-', 'A', 'O', 'Q', 'Z', 'ZeV', ',', '+', 'x', ' ']),
      ).join('');
      try {
        assert.equal(
          encodeModifiedUtf7(decodeModifiedUtf7(wire)),
          wire,
          `seed ${SEED}, ${JSON.stringify(wire)}`,
        );
      } catch (error) {
        if (!(error instanceof ImapSyntaxError)) throw error;
      }
      const name = original.replace(/[\r\n\t]/g, '');
      for (const utf8 of [false, true]) {
        const [token] = commandsOf(`A1 X ${encodeMailboxName(name, utf8)}`, 'utf8')[0].args;
        const expected = /^inbox(\/|$)/i.test(name) ? `INBOX${name.slice(5)}` : name;
        assert.equal(decodeMailboxName(token, utf8), expected, context);
      }
      const pattern = Array.from({ length: fuzz.int(6) }, () =>
        fuzz.pick(['a', 'b', '/', '*', '%', '.']),
      ).join('');
      const candidate = Array.from({ length: fuzz.int(8) }, () => fuzz.pick(['a', 'b', '/', '.'])).join('');
      const regex = new RegExp(
        `^${pattern.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/%/g, '[^/]*')}$`,
      );
      assert.equal(
        listPatternMatcher('', pattern)(candidate),
        regex.test(candidate),
        `seed ${SEED}, ${pattern} ${candidate}`,
      );
    });
  });
});
