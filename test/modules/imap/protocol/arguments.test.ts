// The typed argument parsers, fed through the command parser with lines as real clients (Thunderbird,
// Apple Mail, imapflow, mutt) and the RFCs write them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodeMailboxName,
  encodeMailboxName,
  formatDateTime,
  ImapBadCharsetError,
  ImapSyntaxError,
  listPatternMatcher,
  parseAppend,
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
  sequenceContains,
  sequenceRanges,
} from '../../../../src/modules/imap/protocol/arguments.ts';
import {
  decodeModifiedUtf7,
  encodeModifiedUtf7,
} from '../../../../src/modules/imap/protocol/modified-utf7.ts';
import { type Command, CommandParser, type Token } from '../../../../src/modules/imap/protocol/parser.ts';

const LIMITS = { maxLineBytes: 65_536, maxLiteralBytes: 1 << 20, maxCommandBytes: 2 << 20, maxDepth: 16 };

/** The command a client line makes (literal data may follow its announcement right away). */
function command(line: string): Command {
  const events = new CommandParser(LIMITS).push(Buffer.from(`${line}\r\n`));
  const commands = events.flatMap((event) => (event.kind === 'command' ? [event.command] : []));
  assert.equal(commands.length, 1, JSON.stringify(events));
  return commands[0];
}

/** The arguments of `A1 <line>`. */
function args(line: string): Token[] {
  return command(`A1 ${line}`).args;
}

const syntaxError = (message?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof ImapSyntaxError, String(error));
  if (message) assert.match(error.message, message);
  return true;
};

const INVALID_UTF8: Token = { type: 'string', value: Buffer.from([0xff, 0xfe]), literal: true };
const range = (start: number | '*', end: number | '*' = start) => ({ start, end });

describe('sequence sets', () => {
  test('numbers, ranges, "*" and lists', () => {
    assert.deepEqual(parseSequenceSet('1'), [range(1)]);
    assert.deepEqual(parseSequenceSet('1:5,7,9:*,*,5:1'), [
      range(1, 5),
      range(7),
      range(9, '*'),
      range('*'),
      range(5, 1),
    ]);
    assert.deepEqual(parseSequenceSet('4294967295'), [range(4294967295)]);
    for (const bad of [
      '',
      '0',
      '1:0',
      '-1',
      '1,',
      ',1',
      '1::2',
      '1:2:3',
      'a',
      '4294967296',
      '01',
      ' 1',
      '1 ',
      '$',
    ]) {
      assert.throws(() => parseSequenceSet(bad), syntaxError(/Invalid sequence set/), bad);
    }
  });

  test('contains and ranges resolve "*" to the largest number, backwards ranges included', () => {
    const set = parseSequenceSet('5:1,9:*');
    assert.equal(sequenceContains(set, 3, 20), true);
    assert.equal(sequenceContains(set, 7, 20), false);
    assert.equal(sequenceContains(set, 20, 20), true);
    // UID FETCH 900:* with 500 as the largest UID is 500:900 (RFC 3501 6.4.8).
    assert.equal(sequenceContains(parseSequenceSet('900:*'), 500, 500), true);
    assert.deepEqual(sequenceRanges(parseSequenceSet('7,5:1,3,6,10:12,*'), 11), [
      [1, 7],
      [10, 12],
    ]);
    assert.deepEqual(sequenceRanges(parseSequenceSet('1:*'), 0), [[1, 1]]);
    assert.deepEqual(sequenceRanges(parseSequenceSet('*'), 0), []);
  });
});

describe('FETCH', () => {
  test('Thunderbird header fetch: labels echo the field names upper-cased', () => {
    const fetch = parseFetch(
      args(
        'UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])',
      ),
      { uid: true },
    );
    const fields =
      'FROM TO CC BCC SUBJECT DATE MESSAGE-ID PRIORITY X-PRIORITY REFERENCES NEWSGROUPS IN-REPLY-TO CONTENT-TYPE REPLY-TO';
    assert.deepEqual(fetch, {
      sequence: [range(1, '*')],
      items: [
        { kind: 'uid', label: 'UID' },
        { kind: 'size', label: 'RFC822.SIZE' },
        { kind: 'flags', label: 'FLAGS' },
        {
          kind: 'section',
          section: { part: [], text: 'HEADER.FIELDS', fields: fields.split(' ') },
          peek: true,
          label: `BODY[HEADER.FIELDS (${fields})]`,
        },
      ],
    });
  });

  test('sections, partials, BINARY and the simple items', () => {
    const fetch = parseFetch(
      args(
        'FETCH 2:4 (ENVELOPE BODYSTRUCTURE BODY INTERNALDATE MODSEQ RFC822 RFC822.HEADER RFC822.TEXT BODY[] BODY[1.2.HEADER] body[1.2.mime] BODY[3] BODY.PEEK[TEXT]<0.2048> BODY[1.HEADER.FIELDS.NOT (Received "X-Spam")] BINARY[1.2] BINARY.PEEK[]<100.50> BINARY.SIZE[3])',
      ),
      { uid: false },
    );
    assert.deepEqual(
      fetch.items.map((item) => item.label),
      [
        'ENVELOPE',
        'BODYSTRUCTURE',
        'BODY',
        'INTERNALDATE',
        'MODSEQ',
        'RFC822',
        'RFC822.HEADER',
        'RFC822.TEXT',
        'BODY[]',
        'BODY[1.2.HEADER]',
        'BODY[1.2.MIME]',
        'BODY[3]',
        'BODY[TEXT]<0>',
        'BODY[1.HEADER.FIELDS.NOT (RECEIVED X-SPAM)]',
        'BINARY[1.2]',
        'BINARY[]<100>',
        'BINARY.SIZE[3]',
      ],
    );
    assert.deepEqual(fetch.items[12], {
      kind: 'section',
      section: { part: [], text: 'TEXT' },
      peek: true,
      partial: { start: 0, length: 2048 },
      label: 'BODY[TEXT]<0>',
    });
    assert.deepEqual(fetch.items[10].section, { part: [1, 2], text: 'MIME' });
    assert.deepEqual(fetch.items[13].section, {
      part: [1],
      text: 'HEADER.FIELDS.NOT',
      fields: ['RECEIVED', 'X-SPAM'],
    });
    assert.deepEqual(fetch.items[14], {
      kind: 'binary',
      section: { part: [1, 2] },
      peek: false,
      label: 'BINARY[1.2]',
    });
    assert.deepEqual(fetch.items[16], {
      kind: 'binary.size',
      section: { part: [3] },
      label: 'BINARY.SIZE[3]',
    });
  });

  test('macros, a single item, duplicates and the implied UID', () => {
    const labels = (line: string, uid = false) =>
      parseFetch(args(line), { uid }).items.map((item) => item.label);
    assert.deepEqual(labels('FETCH 1 all'), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']);
    assert.deepEqual(labels('FETCH 1 FAST'), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']);
    assert.deepEqual(labels('FETCH 1 FULL'), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY']);
    assert.deepEqual(labels('FETCH 1 BODY.PEEK[]'), ['BODY[]']);
    assert.deepEqual(labels('FETCH 1 (FLAGS UID flags)'), ['FLAGS', 'UID']);
    assert.deepEqual(parseFetch(args('FETCH 1 (BODY.PEEK[] BODY[] BODY.PEEK[])'), { uid: false }).items, [
      { kind: 'section', section: { part: [] }, peek: false, label: 'BODY[]' },
    ]);
    assert.deepEqual(labels('UID FETCH 1:* FLAGS', true), ['UID', 'FLAGS']);
    assert.deepEqual(labels('UID FETCH 1:* (FLAGS UID)', true), ['FLAGS', 'UID']);
  });

  test('CHANGEDSINCE and VANISHED (RFC 7162)', () => {
    const apple = parseFetch(args('UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)'), { uid: true });
    assert.equal(apple.changedSince, 12345);
    assert.equal(apple.vanished, true);
    assert.deepEqual(
      apple.items.map((item) => item.kind),
      ['uid', 'flags', 'modseq'],
    );
    const plain = parseFetch(args('FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 0)'), { uid: false });
    assert.deepEqual(plain.changedSince, 0);
    assert.equal(plain.vanished, undefined);
    assert.deepEqual(
      plain.items.map((item) => item.kind),
      ['flags', 'modseq'],
    );
    assert.throws(
      () => parseFetch(args('FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)'), { uid: false }),
      syntaxError(/VANISHED/),
    );
    assert.throws(
      () => parseFetch(args('UID FETCH 1 FLAGS (VANISHED)'), { uid: true }),
      syntaxError(/VANISHED/),
    );
    assert.throws(
      () => parseFetch(args('FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)'), { uid: false }),
      syntaxError(),
    );
    assert.throws(
      () => parseFetch(args('FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)'), { uid: false }),
      syntaxError(),
    );
    assert.throws(() => parseFetch(args('FETCH 1 FLAGS ()'), { uid: false }), syntaxError());
  });

  test('malformed requests', () => {
    const bad = [
      'FETCH',
      'FETCH 1',
      'FETCH 0 FLAGS',
      'FETCH 1 ()',
      'FETCH 1 (ALL)',
      'FETCH 1 FOO',
      'FETCH 1 BODY.PEEK',
      'FETCH 1 BODY[MIME]',
      'FETCH 1 BODY[0]',
      'FETCH 1 BODY[1.]',
      'FETCH 1 BODY[HEADER.FIELDS]',
      'FETCH 1 BODY[HEADER.FIELDS ()]',
      'FETCH 1 BODY[HEADER.FIELDS (A:B)]',
      'FETCH 1 BODY[HEADER (FROM)]',
      'FETCH 1 BODY[TEXT.HEADER]',
      'FETCH 1 BODY[1.FOO]',
      'FETCH 1 BINARY[HEADER]',
      'FETCH 1 BINARY.SIZE[1]<0.10>',
      'FETCH 1 "FLAGS"',
      'FETCH 1 FLAGS EXTRA',
      'FETCH 1 FLAGS (FOO)',
    ];
    for (const line of bad) assert.throws(() => parseFetch(args(line), { uid: false }), syntaxError(), line);
  });
});

describe('SEARCH', () => {
  test('RFC 3501 and ESEARCH examples', () => {
    assert.deepEqual(parseSearch(args('SEARCH OR FROM "a" NOT SEEN SINCE 1-Feb-1994')), {
      charset: null,
      returnOptions: null,
      key: {
        op: 'and',
        keys: [
          {
            op: 'or',
            left: { op: 'header', field: 'from', value: 'a' },
            right: { op: 'not', key: { op: 'flag', flag: '\\Seen', present: true } },
          },
          { op: 'date', field: 'internal', cmp: 'since', date: '1994-02-01' },
        ],
      },
    });
    assert.deepEqual(
      parseSearch(args('UID SEARCH RETURN (MIN COUNT) CHARSET utf-8 1:5,7 UID 3:* (DELETED unanswered)')),
      {
        charset: 'UTF-8',
        returnOptions: ['MIN', 'COUNT'],
        key: {
          op: 'and',
          keys: [
            { op: 'seq', set: [range(1, 5), range(7)] },
            { op: 'uid', set: [range(3, '*')] },
            {
              op: 'and',
              keys: [
                { op: 'flag', flag: '\\Deleted', present: true },
                { op: 'flag', flag: '\\Answered', present: false },
              ],
            },
          ],
        },
      },
    );
    assert.deepEqual(parseSearch(args('SEARCH RETURN () ALL')).returnOptions, ['ALL']);
    assert.deepEqual(parseSearch(args('SEARCH all')).key, { op: 'all' });
  });

  test('every key', () => {
    const key = (line: string) => parseSearch(args(`SEARCH ${line}`)).key;
    assert.deepEqual(key('NEW'), { op: 'new' });
    assert.deepEqual(key('OLD'), { op: 'old' });
    assert.deepEqual(key('RECENT'), { op: 'flag', flag: '\\Recent', present: true });
    assert.deepEqual(key('UNDRAFT'), { op: 'flag', flag: '\\Draft', present: false });
    assert.deepEqual(key('FLAGGED'), { op: 'flag', flag: '\\Flagged', present: true });
    assert.deepEqual(key('UNDELETED'), { op: 'flag', flag: '\\Deleted', present: false });
    assert.deepEqual(key('KEYWORD $Forwarded'), { op: 'flag', flag: '$Forwarded', present: true });
    assert.deepEqual(key('UNKEYWORD Junk'), { op: 'flag', flag: 'Junk', present: false });
    assert.deepEqual(key('TO bob CC "c d" BCC e'), {
      op: 'and',
      keys: [
        { op: 'header', field: 'to', value: 'bob' },
        { op: 'header', field: 'cc', value: 'c d' },
        { op: 'header', field: 'bcc', value: 'e' },
      ],
    });
    assert.deepEqual(key('HEADER Message-ID "<x@y>"'), { op: 'header', field: 'message-id', value: '<x@y>' });
    assert.deepEqual(key('HEADER X-Empty ""'), { op: 'header', field: 'x-empty', value: '' });
    assert.deepEqual(key('SUBJECT {8}\r\nGrüße!'), { op: 'header', field: 'subject', value: 'Grüße!' });
    assert.deepEqual(key('BODY "naïve"'), { op: 'body', value: 'naïve' });
    assert.deepEqual(key('TEXT "string not in mailbox"'), { op: 'text', value: 'string not in mailbox' });
    assert.deepEqual(key('BEFORE "01-Jan-2024"'), {
      op: 'date',
      field: 'internal',
      cmp: 'before',
      date: '2024-01-01',
    });
    assert.deepEqual(key('ON 29-feb-2024'), { op: 'date', field: 'internal', cmp: 'on', date: '2024-02-29' });
    assert.deepEqual(key('SENTBEFORE 1-Jan-2000'), {
      op: 'date',
      field: 'sent',
      cmp: 'before',
      date: '2000-01-01',
    });
    assert.deepEqual(key('SENTON 1-Jan-2000'), { op: 'date', field: 'sent', cmp: 'on', date: '2000-01-01' });
    assert.deepEqual(key('SENTSINCE 1-Jan-2000'), {
      op: 'date',
      field: 'sent',
      cmp: 'since',
      date: '2000-01-01',
    });
    assert.deepEqual(key('LARGER 1024 SMALLER 4096'), {
      op: 'and',
      keys: [
        { op: 'size', cmp: 'larger', value: 1024 },
        { op: 'size', cmp: 'smaller', value: 4096 },
      ],
    });
    assert.deepEqual(key('MODSEQ 620162338'), { op: 'modseq', value: 620162338 });
    assert.deepEqual(key('MODSEQ "/flags/\\\\draft" all 620162338'), { op: 'modseq', value: 620162338 });
    // Thunderbird's quick filter: a left-leaning chain of ORs.
    assert.deepEqual(key('OR OR FROM x TO x SUBJECT x'), {
      op: 'or',
      left: {
        op: 'or',
        left: { op: 'header', field: 'from', value: 'x' },
        right: { op: 'header', field: 'to', value: 'x' },
      },
      right: { op: 'header', field: 'subject', value: 'x' },
    });
  });

  test('charsets: UTF-8 and US-ASCII; anything else is BADCHARSET', () => {
    assert.equal(parseSearch(args('SEARCH CHARSET US-ASCII ALL')).charset, 'US-ASCII');
    assert.equal(parseSearch(args('SEARCH CHARSET "UTF-8" ALL')).charset, 'UTF-8');
    assert.throws(
      () => parseSearch(args('SEARCH CHARSET ISO-8859-1 TEXT x')),
      (error) => error instanceof ImapBadCharsetError && error.charset === 'ISO-8859-1',
    );
  });

  test('malformed criteria', () => {
    const bad = [
      'SEARCH',
      'SEARCH FOO',
      'SEARCH FROM',
      'SEARCH OR SEEN',
      'SEARCH NOT',
      'SEARCH ()',
      'SEARCH SINCE 31-Feb-2024',
      'SEARCH SINCE 2024-02-01',
      'SEARCH SINCE 1-Foo-2024',
      'SEARCH LARGER -1',
      'SEARCH LARGER x',
      'SEARCH UID x',
      'SEARCH 0:5',
      'SEARCH KEYWORD \\Seen',
      'SEARCH KEYWORD "a b"',
      'SEARCH RETURN (FOO) ALL',
      'SEARCH RETURN ALL',
      'SEARCH CHARSET',
      'SEARCH MODSEQ "/flags/\\\\seen" bogus 5',
      'SEARCH MODSEQ "/other" all 5',
      'SEARCH "ALL"',
    ];
    for (const line of bad) assert.throws(() => parseSearch(args(line)), syntaxError(), line);
    assert.throws(() => parseSearch([{ type: 'atom', value: 'TEXT' }, INVALID_UTF8]), syntaxError(/UTF-8/));
    // A chain of NOTs deep enough to exhaust the stack is refused before it does.
    const deep = Array(5000).fill('NOT').join(' ');
    assert.throws(
      () =>
        parseSearch([
          ...deep.split(' ').map((value): Token => ({ type: 'atom', value })),
          { type: 'atom', value: 'ALL' },
        ]),
      syntaxError(/nested too deeply/),
    );
  });
});

describe('STORE and flags', () => {
  test('the forms clients send', () => {
    assert.deepEqual(parseStore(args('UID STORE 4 +FLAGS (\\Seen)')), {
      sequence: [range(4)],
      mode: 'add',
      silent: false,
      flags: ['\\Seen'],
    });
    assert.deepEqual(parseStore(args('STORE 2:4 -flags.silent \\deleted $Junk')), {
      sequence: [range(2, 4)],
      mode: 'remove',
      silent: true,
      flags: ['\\Deleted', '$Junk'],
    });
    assert.deepEqual(parseStore(args('UID STORE 1:* (UNCHANGEDSINCE 320162338) FLAGS.SILENT ()')), {
      sequence: [range(1, '*')],
      mode: 'set',
      silent: true,
      flags: [],
      unchangedSince: 320162338,
    });
    assert.deepEqual(
      parseStore(args('STORE 1 FLAGS (\\SEEN \\Seen $label1 $Label1 \\Answered \\Flagged \\Draft)')).flags,
      ['\\Seen', '$label1', '\\Answered', '\\Flagged', '\\Draft'],
    );
  });

  test('refused flags and forms', () => {
    const bad = [
      'STORE 1 +FLAGS (\\Recent)',
      'STORE 1 +FLAGS (\\Foo)',
      'STORE 1 +FLAGS ("quoted")',
      'STORE 1 +FLAGS (a%b)',
      'STORE 1 +FLAGS (a]b)',
      'STORE 1 +FLAGS',
      'STORE 1 *FLAGS (\\Seen)',
      'STORE 1 FLAGS.LOUD (\\Seen)',
      'STORE 1 (UNCHANGEDSINCE) FLAGS ()',
      'STORE 1 (FOO 1) FLAGS ()',
      'STORE 1 +FLAGS ((\\Seen))',
      'STORE 1 +FLAGS (\\Seen) (\\Draft)',
      'STORE x +FLAGS (\\Seen)',
    ];
    for (const line of bad) assert.throws(() => parseStore(args(line)), syntaxError(), line);
    assert.throws(() => parseFlagList({ type: 'atom', value: '\\Seen' }), syntaxError());
  });
});

describe('SELECT, STATUS, LIST and mailbox names', () => {
  test('CONDSTORE and QRESYNC parameters (RFC 7162 examples)', () => {
    assert.deepEqual(parseSelect(args('SELECT "INBOX" (CONDSTORE)')), { mailbox: 'INBOX', condstore: true });
    assert.deepEqual(parseSelect(args('EXAMINE inbox')), { mailbox: 'INBOX', condstore: false });
    // The modseq is past 2^53: it loses precision, harmlessly, since ours stay far below.
    assert.deepEqual(
      parseSelect(args('SELECT INBOX (QRESYNC (67890007 90060115194045000 41,43:211,214:541))')),
      {
        mailbox: 'INBOX',
        condstore: false,
        qresync: {
          uidValidity: 67890007,
          modseq: 90060115194045000,
          knownUids: [range(41), range(43, 211), range(214, 541)],
        },
      },
    );
    assert.deepEqual(
      parseSelect(
        args(
          'SELECT INBOX (CONDSTORE QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))',
        ),
      ).qresync?.seqMatch?.seqs,
      [range(5000), range(7500), range(9000), range(9990, 9999)],
    );
    assert.deepEqual(parseSelect(args('SELECT INBOX (QRESYNC (1 2 (1:2 3:4)))')).qresync, {
      uidValidity: 1,
      modseq: 2,
      seqMatch: { seqs: [range(1, 2)], uids: [range(3, 4)] },
    });
    const bad = [
      'SELECT',
      'SELECT INBOX ()',
      'SELECT INBOX (FOO)',
      'SELECT INBOX (CONDSTORE CONDSTORE)',
      'SELECT INBOX (QRESYNC)',
      'SELECT INBOX (QRESYNC (0 5))',
      'SELECT INBOX (QRESYNC (1 0))',
      'SELECT INBOX (QRESYNC (1 5 1:*))',
      'SELECT INBOX (QRESYNC (1 5 1:5 (1:5)))',
      'SELECT INBOX (QRESYNC (1 5 1:5 (1:5 2:6) x))',
      'SELECT INBOX CONDSTORE',
      'SELECT INBOX (CONDSTORE) x',
    ];
    for (const line of bad) assert.throws(() => parseSelect(args(line)), syntaxError(), line);
  });

  test('STATUS items', () => {
    assert.deepEqual(parseStatus(args('STATUS "Sent" (MESSAGES UIDNEXT unseen HIGHESTMODSEQ)')), {
      mailbox: 'Sent',
      items: ['MESSAGES', 'UIDNEXT', 'UNSEEN', 'HIGHESTMODSEQ'],
    });
    assert.deepEqual(parseStatusItems(args('X (RECENT UIDVALIDITY SIZE APPENDLIMIT DELETED RECENT)')[0]), [
      'RECENT',
      'UIDVALIDITY',
      'SIZE',
      'APPENDLIMIT',
      'DELETED',
    ]);
    for (const line of ['STATUS INBOX ()', 'STATUS INBOX (FOO)', 'STATUS INBOX MESSAGES', 'STATUS INBOX']) {
      assert.throws(() => parseStatus(args(line)), syntaxError(), line);
    }
  });

  test('LIST, LIST-EXTENDED and LIST-STATUS', () => {
    assert.deepEqual(
      parseList(args('LIST (SUBSCRIBED) "" ("INBOX" "Sent") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))'), {
        utf8: false,
      }),
      {
        reference: '',
        patterns: ['INBOX', 'Sent'],
        selection: ['SUBSCRIBED'],
        return: { subscribed: true, children: true, specialUse: false, status: ['MESSAGES', 'UNSEEN'] },
      },
    );
    assert.deepEqual(parseList(args('LIST "" *'), { utf8: false }), {
      reference: '',
      patterns: ['*'],
      selection: [],
      return: { subscribed: false, children: false, specialUse: false },
    });
    const thunderbird = parseList(args('list (SPECIAL-USE) "" "*" return (special-use)'), { utf8: false });
    assert.deepEqual(thunderbird.selection, ['SPECIAL-USE']);
    assert.equal(thunderbird.return.specialUse, true);
    const apple = parseList(args('LIST "" "&ZeVnLIqe-/%" RETURN ()'), { utf8: false });
    assert.deepEqual(apple.patterns, ['日本語/%']);
    assert.deepEqual(parseList(args('LIST "" "日本語/%"'), { utf8: true }).patterns, ['日本語/%']);
    assert.deepEqual(
      parseList(args('LIST (REMOTE RECURSIVEMATCH SUBSCRIBED) inbox/ %'), { utf8: false }).reference,
      'INBOX/',
    );
    const bad = [
      'LIST',
      'LIST ""',
      'LIST (FOO) "" *',
      'LIST (RECURSIVEMATCH) "" *',
      'LIST (REMOTE RECURSIVEMATCH) "" *',
      'LIST "" ()',
      'LIST "" * RETURN',
      'LIST "" * RETURN (FOO)',
      'LIST "" * RETURN (STATUS)',
      'LIST "" * RETURN (STATUS ())',
      'LIST "" * EXTRA',
      'LIST "" "&Jjo"',
    ];
    for (const line of bad) assert.throws(() => parseList(args(line), { utf8: false }), syntaxError(), line);
  });

  test('LIST patterns: "*" crosses the delimiter, "%" does not, the reference is a prefix', () => {
    const matches = (reference: string, pattern: string, names: string[]) => {
      const match = listPatternMatcher(reference, pattern);
      return names.filter((name) => match(name));
    };
    const names = ['INBOX', 'INBOX/Sub', 'INBOX/Sub/Deep', 'Sent', 'Archive', 'Archive/2024', 'Archives'];
    assert.deepEqual(matches('', '*', names), names);
    assert.deepEqual(matches('', '%', names), ['INBOX', 'Sent', 'Archive', 'Archives']);
    assert.deepEqual(matches('', 'inbox/%', names), ['INBOX/Sub']);
    assert.deepEqual(matches('', 'Inbox', names), ['INBOX']);
    assert.deepEqual(matches('Archive/', '%', names), ['Archive/2024']);
    assert.deepEqual(matches('Archive', '*', names), ['Archive', 'Archive/2024', 'Archives']);
    assert.deepEqual(matches('Archive/', '/*', names), ['Archive/2024']);
    assert.deepEqual(matches('', '*/%', names), ['INBOX/Sub', 'INBOX/Sub/Deep', 'Archive/2024']);
    assert.deepEqual(matches('', 'A%e', names), ['Archive']);
    assert.deepEqual(matches('', '', names), []);
    assert.deepEqual(matches('', 'a.b', ['a.b', 'axb']), ['a.b']);
    assert.deepEqual(matches('', '%', ['日本語', '日本語/x']), ['日本語']);
    assert.deepEqual(matches('', '%', ['a.b']), ['a.b']);
    assert.deepEqual(listPatternMatcher('', 'a.%', '.')('a.b.c'), false);
    // Many wildcards against a long name that does not match: no exponential backtracking.
    const started = performance.now();
    assert.equal(listPatternMatcher('', `${'*a'.repeat(200)}b`)('a'.repeat(5000)), false);
    assert.ok(performance.now() - started < 500);
  });

  test('mailbox names: modified UTF-7 or UTF-8, INBOX in any case', () => {
    const name = (line: string, utf8 = false) => decodeMailboxName(args(`X ${line}`)[0], utf8);
    assert.equal(name('&ZeVnLIqe-'), '日本語');
    assert.equal(name('"Entw&APw-rfe"'), 'Entwürfe');
    assert.equal(name('{12}\r\nEntw&APw-rfe'), 'Entwürfe');
    assert.equal(name('"Entwürfe"', true), 'Entwürfe');
    assert.equal(name('"A&B"', true), 'A&B');
    assert.equal(name('"A&-B"'), 'A&B');
    assert.equal(name('iNbOx'), 'INBOX');
    assert.equal(name('"inbox/Child"'), 'INBOX/Child');
    assert.equal(name('inboxes'), 'inboxes');
    assert.equal(name('[Gmail]/Sent'), '[Gmail]/Sent');
    assert.equal(name('""'), '');
    assert.equal(name('NIL'), 'NIL');
    for (const bad of ['"Entwürfe"', '"&Jjo"', '"a&"', '{3}\r\na\tb', 'BODY[]']) {
      assert.throws(() => name(bad), syntaxError(), bad);
    }
    assert.throws(() => decodeMailboxName(INVALID_UTF8, true), syntaxError(/UTF-8/));
    assert.throws(() => decodeMailboxName(INVALID_UTF8, false), syntaxError(/modified UTF-7/));
  });

  test('modified UTF-7 round trips and refuses what is not canonical', () => {
    const pairs = [
      ['&ZeVnLIqe-', '日本語'],
      ['Entw&APw-rfe', 'Entwürfe'],
      ['~peter/mail/&U,BTFw-/&ZeVnLIqe-', '~peter/mail/台北/日本語'],
      ['&-', '&'],
      ['A&-B', 'A&B'],
      ['&2D3eAA-', '😀'],
      ['Ent&AOQ-', 'Entä'],
      ['', ''],
    ];
    for (const [wire, text] of pairs) {
      assert.equal(decodeModifiedUtf7(wire), text);
      assert.equal(encodeModifiedUtf7(text), wire);
    }
    for (const bad of [
      '&',
      'a&b',
      '&AGE-',
      '&AOQ-&AOQ-',
      '&AOR-',
      '&Jjo!',
      '&A-',
      '&2D0-',
      '&3gA-',
      'ä',
      'a\tb',
    ]) {
      assert.throws(() => decodeModifiedUtf7(bad), syntaxError(/modified UTF-7/), bad);
    }
  });

  test('names and strings for responses: atom, quoted, or literal', () => {
    assert.equal(quoteAString('INBOX'), 'INBOX');
    assert.equal(quoteAString('[Gmail]/Sent'), '[Gmail]/Sent');
    assert.equal(quoteAString('Sent Items'), '"Sent Items"');
    assert.equal(quoteAString(''), '""');
    assert.equal(quoteAString('NIL'), '"NIL"');
    assert.equal(quoteAString('a%b*'), '"a%b*"');
    assert.equal(quoteAString('say "hi" \\o/'), '"say \\"hi\\" \\\\o/"');
    assert.equal(quoteAString('two\r\nlines'), '{10}\r\ntwo\r\nlines');
    assert.equal(quoteAString('Grüße'), '{7}\r\nGrüße');
    assert.equal(quoteAString('Grüße', true), '"Grüße"');
    assert.equal(encodeMailboxName('Entwürfe', false), 'Entw&APw-rfe');
    assert.equal(encodeMailboxName('Gesendete Objekte/日本語', false), '"Gesendete Objekte/&ZeVnLIqe-"');
    assert.equal(encodeMailboxName('Entwürfe', true), '"Entwürfe"');
    assert.equal(encodeMailboxName('A&B', true), 'A&B');
    // What quoteAString writes, the command parser reads back.
    for (const text of ['plain', 'with space', 'q"uo\\te', 'line\r\nbreak', 'NIL', '', 'ü', '*']) {
      const [token] = args(`X ${quoteAString(text)}`);
      assert.equal(
        token.type === 'string' ? token.value.toString() : token.type === 'atom' ? token.value : null,
        text,
      );
    }
  });

  test('COPY, MOVE and UID EXPUNGE', () => {
    assert.deepEqual(parseCopyMove(args('UID MOVE 42:44 "Deleted Items"')), {
      sequence: [range(42, 44)],
      mailbox: 'Deleted Items',
    });
    assert.deepEqual(parseCopyMove(args('COPY 2:4 &ZeVnLIqe-')).mailbox, '日本語');
    assert.deepEqual(parseCopyMove(args('COPY 2:4 "日本語"'), { utf8: true }).mailbox, '日本語');
    assert.deepEqual(parseUidExpunge(args('UID EXPUNGE 3000:3002,3004')), [range(3000, 3002), range(3004)]);
    for (const line of ['COPY 1', 'COPY x INBOX', 'COPY 1 INBOX x']) {
      assert.throws(() => parseCopyMove(args(line)), syntaxError(), line);
    }
    assert.throws(() => parseUidExpunge(args('UID EXPUNGE')), syntaxError());
  });
});

describe('APPEND and dates', () => {
  test('flags, date and literal, several messages, and the UTF8 form', () => {
    const append = parseAppend(
      args(
        'APPEND "Sent" (\\Seen $NotJunk) "17-Jul-1996 02:44:25 -0700" {11}\r\nFrom: a\r\n\r\n (\\Draft) {2+}\r\nhi {3}\r\nyo!',
      ),
    );
    assert.deepEqual(append, {
      mailbox: 'Sent',
      messages: [
        {
          flags: ['\\Seen', '$NotJunk'],
          date: new Date('1996-07-17T09:44:25Z'),
          content: Buffer.from('From: a\r\n\r\n'),
        },
        { flags: ['\\Draft'], date: null, content: Buffer.from('hi') },
        { flags: [], date: null, content: Buffer.from('yo!') },
      ],
    });
    const utf8 = parseAppend(args('APPEND "Drafts" " 7-Jul-1996 02:44:25 +0000" UTF8 (~{4}\r\n\x00\x01ab)'));
    assert.deepEqual(utf8.messages, [
      { flags: [], date: new Date('1996-07-07T02:44:25Z'), content: Buffer.from('\x00\x01ab') },
    ]);
    const bad = [
      'APPEND INBOX',
      'APPEND INBOX (\\Seen)',
      'APPEND INBOX "hello"',
      'APPEND INBOX (\\Recent) {1}\r\nx',
      'APPEND INBOX "32-Jul-1996 02:44:25 -0700" {1}\r\nx',
      'APPEND INBOX {1}\r\nx "17-Jul-1996 02:44:25 -0700"',
      'APPEND INBOX {1}\r\nx (\\Seen)',
      'APPEND INBOX UTF8 {1}\r\nx',
      'APPEND INBOX UTF8 ({1}\r\nx {1}\r\ny)',
      'APPEND INBOX "17-Jul-1996 02:44:25 -0700" (\\Seen) {1}\r\nx',
    ];
    for (const line of bad) assert.throws(() => parseAppend(args(line)), syntaxError(), JSON.stringify(line));
  });

  test('date-time: zones, padding, and impossible dates', () => {
    assert.deepEqual(parseDateTime('17-Jul-1996 02:44:25 -0700'), new Date('1996-07-17T09:44:25Z'));
    assert.deepEqual(parseDateTime(' 1-Jan-2024 00:30:00 +0100'), new Date('2023-12-31T23:30:00Z'));
    assert.deepEqual(parseDateTime('1-jan-2024 00:00:00 +0000'), new Date('2024-01-01T00:00:00Z'));
    assert.deepEqual(parseDateTime('29-Feb-2024 23:59:59 -1200'), new Date('2024-03-01T11:59:59Z'));
    assert.deepEqual(parseDateTime('01-Jan-0050 00:00:00 +0000').getUTCFullYear(), 50);
    const bad = [
      '',
      '17-Jul-1996',
      '17-Jul-1996 02:44:25',
      '29-Feb-2023 00:00:00 +0000',
      '31-Apr-2024 00:00:00 +0000',
      '00-Jan-2024 00:00:00 +0000',
      '17-Jul-1996 24:00:00 +0000',
      '17-Jul-1996 02:60:00 +0000',
      '17-Jul-1996 02:44:60 +0000',
      '17-Jul-1996 02:44:25 +0060',
      '17-Jul-1996 02:44:25 0700',
      '17-Jul-96 02:44:25 +0000',
      '17 Jul 1996 02:44:25 +0000',
      ' 17-Jul-1996 02:44:25 +0000',
      '17-Jul-1996  02:44:25 +0000',
    ];
    for (const text of bad) assert.throws(() => parseDateTime(text), syntaxError(/Invalid date/), text);
  });

  test('INTERNALDATE and SEARCH dates', () => {
    assert.equal(formatDateTime(new Date('1996-07-07T09:44:25.123Z')), ' 7-Jul-1996 09:44:25 +0000');
    assert.equal(formatDateTime(new Date('2024-12-31T23:05:09Z')), '31-Dec-2024 23:05:09 +0000');
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    assert.deepEqual(parseDateTime(formatDateTime(now)), now);
    assert.equal(parseSearchDate('1-Feb-1994'), '1994-02-01');
    assert.equal(parseSearchDate('01-FEB-1994'), '1994-02-01');
    for (const bad of ['1-Feb-94', '001-Feb-1994', '30-Feb-1994', '1 Feb 1994', ' 1-Feb-1994']) {
      assert.throws(() => parseSearchDate(bad), syntaxError(), bad);
    }
  });
});

describe('ENABLE, ID, AUTHENTICATE and LOGIN', () => {
  test('ENABLE', () => {
    assert.deepEqual(parseEnable(args('ENABLE CONDSTORE utf8=accept QRESYNC condstore')), [
      'CONDSTORE',
      'UTF8=ACCEPT',
      'QRESYNC',
    ]);
    assert.throws(() => parseEnable(args('ENABLE')), syntaxError());
    assert.throws(() => parseEnable(args('ENABLE "CONDSTORE"')), syntaxError());
  });

  test('ID', () => {
    assert.deepEqual(
      parseId(
        args(
          'ID ("name" "iPhone Mail" "version" "19H12" "os" "iOS" "os-version" "15.1 (19H12)" "Vendor" NIL)',
        ),
      ),
      { name: 'iPhone Mail', version: '19H12', os: 'iOS', 'os-version': '15.1 (19H12)', vendor: null },
    );
    assert.deepEqual(parseId(args('ID NIL')), {});
    assert.deepEqual(parseId(args('ID ()')), {});
    assert.deepEqual(Object.keys(parseId(args('ID ("__proto__" "x")'))), ['__proto__']);
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => `"k${i}" "v"`).join(' ');
    assert.equal(Object.keys(parseId(args(`ID (${pairs(30)})`))).length, 30);
    const bad = [
      'ID',
      `ID (${pairs(31)})`,
      'ID ("name")',
      'ID ("name" "a" "NAME" "b")',
      `ID ("${'k'.repeat(31)}" "v")`,
      `ID ("k" "${'v'.repeat(1025)}")`,
      'ID (NIL "v")',
      'ID ("k" ("v"))',
      'ID "name" "x"',
    ];
    for (const line of bad) assert.throws(() => parseId(args(line)), syntaxError(), line.slice(0, 40));
  });

  test('AUTHENTICATE with and without SASL-IR', () => {
    assert.deepEqual(parseAuthenticate(args('AUTHENTICATE PLAIN')), { mechanism: 'PLAIN' });
    assert.deepEqual(parseAuthenticate(args('authenticate plain AGFsaWNlAHNlY3JldA==')), {
      mechanism: 'PLAIN',
      initial: 'AGFsaWNlAHNlY3JldA==',
    });
    assert.deepEqual(parseAuthenticate(args('AUTHENTICATE XOAUTH2 =')), {
      mechanism: 'XOAUTH2',
      initial: '=',
    });
    for (const line of [
      'AUTHENTICATE',
      'AUTHENTICATE PLAIN abc',
      'AUTHENTICATE PLAIN ""',
      'AUTHENTICATE "PLAIN"',
      'AUTHENTICATE PLAIN = x',
      'AUTHENTICATE P!AIN',
    ]) {
      assert.throws(() => parseAuthenticate(args(line)), syntaxError(), line);
    }
  });

  test('LOGIN', () => {
    assert.deepEqual(parseLogin(args('LOGIN alice@example.com "p\\"w d"')), {
      username: 'alice@example.com',
      password: 'p"w d',
    });
    assert.deepEqual(parseLogin(args('LOGIN {5+}\r\nalice {7+}\r\np\r\nw\x00rd')), {
      username: 'alice',
      password: 'p\r\nw\x00rd',
    });
    assert.equal(parseLogin(args('LOGIN a "\ufeffpw"')).password, '\ufeffpw', 'a leading BOM is kept');
    assert.throws(() => parseLogin(args('LOGIN alice')), syntaxError());
    assert.throws(() => parseLogin(args('LOGIN alice (pw)')), syntaxError());
  });
});
