// The streaming IMAP command reader: tokens, literals in every form, any chunking of the input, the limits
// that keep a connection's memory bounded, and recovery from broken commands.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Command,
  CommandParser,
  type ParserEvent,
  type ParserLimits,
  type Token,
} from '../../../../src/modules/imap/protocol/parser.ts';

const LIMITS: ParserLimits = {
  maxLineBytes: 200,
  maxLiteralBytes: 100,
  maxCommandBytes: 400,
  maxDepth: 4,
  maxTokens: 50,
};

function parse(input: string | Buffer, limits = LIMITS): ParserEvent[] {
  return new CommandParser(limits).push(Buffer.isBuffer(input) ? input : Buffer.from(input));
}

/** Feeds the input in pieces of the given sizes (repeating the last) and collects the events. */
function parseInPieces(input: string | Buffer, sizes: number[], limits = LIMITS): ParserEvent[] {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const parser = new CommandParser(limits);
  const events: ParserEvent[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[Math.min(i, sizes.length - 1)];
    events.push(...parser.push(bytes.subarray(offset, offset + size)));
    offset += size;
  }
  return events;
}

function commands(events: ParserEvent[]): Command[] {
  return events.flatMap((event) => (event.kind === 'command' ? [event.command] : []));
}

function only(events: ParserEvent[]): Command {
  assert.equal(events.length, 1, JSON.stringify(events));
  const [event] = events;
  assert.equal(event.kind, 'command', JSON.stringify(event));
  return event.command;
}

const atom = (value: string): Token => ({ type: 'atom', value });
const quoted = (value: string): Token => ({ type: 'string', value: Buffer.from(value), literal: false });
const literal = (value: string): Token => ({ type: 'string', value: Buffer.from(value), literal: true });
const list = (...items: Token[]): Token => ({ type: 'list', items });
const error = (tag: string | null, message: string): ParserEvent => ({ kind: 'error', tag, message });
const CONTINUE: ParserEvent = { kind: 'continue', text: 'Ready for literal data' };

describe('IMAP command parser', () => {
  test('tag, upper-cased name, UID prefix and every token kind', () => {
    const login = only(parse('a1 login alice "p\\"a\\\\ss"\r\n'));
    assert.deepEqual(login, {
      tag: 'a1',
      name: 'LOGIN',
      uid: false,
      args: [atom('alice'), quoted('p"a\\ss')],
      bytes: 27,
    });

    const fetch = only(parse('A2 UID fetch 1:* (FLAGS NIL nil (X (Y)) "")\r\n'));
    assert.equal(fetch.name, 'FETCH');
    assert.equal(fetch.uid, true);
    assert.deepEqual(fetch.args, [
      atom('1:*'),
      list(atom('FLAGS'), { type: 'nil' }, { type: 'nil' }, list(atom('X'), list(atom('Y'))), quoted('')),
    ]);

    // Mailbox names, patterns and flags are bare words too.
    const words = only(parse('A3 X [Gmail]/Sent % INBOX* \\Seen $Forwarded ~peter\r\n'));
    assert.deepEqual(
      words.args.map((token) => (token.type === 'atom' ? token.value : token.type)),
      ['[Gmail]/Sent', '%', 'INBOX*', '\\Seen', '$Forwarded', '~peter'],
    );
  });

  test('sections and partials of BODY, BODY.PEEK and BINARY', () => {
    const command = only(
      parse(
        'A1 FETCH 1 (BODY[] body.peek[HEADER.FIELDS (FROM "To")]<0.100> BINARY.SIZE[1.2] BODY[1.MIME] BODY)\r\n',
      ),
    );
    assert.deepEqual(command.args[1], {
      type: 'list',
      items: [
        { type: 'atom', value: 'BODY', section: [] },
        {
          type: 'atom',
          value: 'body.peek',
          section: [atom('HEADER.FIELDS'), list(atom('FROM'), quoted('To'))],
          partial: { start: 0, length: 100 },
        },
        { type: 'atom', value: 'BINARY.SIZE', section: [atom('1.2')] },
        { type: 'atom', value: 'BODY', section: [atom('1.MIME')] },
        atom('BODY'),
      ],
    });
    // Only after those words does "[" open a section.
    assert.deepEqual(only(parse('A2 X FOO[1]\r\n')).args, [atom('FOO[1]')]);
    for (const bad of ['BODY[]<0>', 'BODY[]<0.0>', 'BODY[]<a.1>', 'BODY[]<0.1', 'BODY[]<0.4294967296>']) {
      assert.equal(parse(`A3 FETCH 1 ${bad}\r\n`)[0].kind, 'error', bad);
    }
  });

  test('UTF-8 in quoted strings is kept as bytes; NUL, CR, bad escapes and open quotes are not', () => {
    const command = only(parse('A1 SELECT "Entwürfe/日本語"\r\n'));
    assert.deepEqual(command.args, [quoted('Entwürfe/日本語')]);
    assert.deepEqual(parse('A2 SELECT "a\x00b"\r\n'), [error('A2', 'NUL in quoted string')]);
    assert.deepEqual(parse('A3 SELECT "a\rb"\r\n'), [error('A3', 'CR in quoted string')]);
    assert.deepEqual(parse('A4 SELECT "a\\nb"\r\n'), [error('A4', 'Invalid escape in quoted string')]);
    // A quoted string cannot run over the line end: its LF ends the line.
    const events = parse('A5 SELECT "a\nb"\r\n');
    assert.deepEqual(events, [error('A5', 'Unterminated quoted string'), error(null, 'Invalid tag')]);
    // 8-bit bytes are for quoted strings and literals only.
    assert.deepEqual(parse('A6 SELECT Entwürfe\r\n'), [error('A6', 'Invalid character 0xc3')]);
  });

  test('synchronising literals get a continuation request, then the command', () => {
    const events = parse('A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n');
    assert.deepEqual(events.slice(0, 2), [CONTINUE, CONTINUE]);
    assert.deepEqual(commands(events)[0], {
      tag: 'A1',
      name: 'LOGIN',
      uid: false,
      args: [literal('alice'), literal('secret')],
      bytes: 33,
    });
    // An empty literal still waits for "+"; literals may hold CR, LF and anything else.
    const empty = parse('A2 X {0}\r\n {4}\r\n\r\n)(\r\n');
    assert.deepEqual(empty.slice(0, 2), [CONTINUE, CONTINUE]);
    assert.deepEqual(commands(empty)[0].args, [literal(''), literal('\r\n)(')]);
    // Inside lists and sections too.
    const nested = commands(parse('A3 FETCH 1 (BODY[HEADER.FIELDS ({4}\r\nFROM)])\r\n'))[0];
    assert.deepEqual(nested.args[1], {
      type: 'list',
      items: [{ type: 'atom', value: 'BODY', section: [atom('HEADER.FIELDS'), list(literal('FROM'))] }],
    });
  });

  test('non-synchronising (LITERAL+) literals come without a continuation request, literal8 either way', () => {
    const command = only(parse('A1 APPEND INBOX {5+}\r\nhello ~{3+}\r\na\x00b\r\n'));
    assert.deepEqual(command.args, [
      atom('INBOX'),
      literal('hello'),
      { type: 'string', value: Buffer.from('a\x00b'), literal: true, literal8: true },
    ]);
    const events = parse('A2 APPEND INBOX ~{1}\r\nc\r\n');
    assert.deepEqual(events[0], CONTINUE);
    assert.deepEqual(commands(events)[0].args[1], {
      type: 'string',
      value: Buffer.from('c'),
      literal: true,
      literal8: true,
    });
  });

  test('{n-} is not literal syntax (LITERAL- uses {n+} up to 4096), and a literal must end its line', () => {
    assert.deepEqual(parse('A1 APPEND INBOX {5-}\r\nhello\r\n'), [
      error('A1', 'Invalid literal'),
      error('hello', 'Missing command name'),
    ]);
    assert.deepEqual(parse('A2 X {5} x\r\n'), [error('A2', 'A literal must end its line')]);
    assert.deepEqual(parse('A3 X {}\r\n'), [error('A3', 'Invalid literal')]);
    assert.deepEqual(parse('A4 X a{5}\r\n'), [error('A4', 'Expected a space between arguments')]);
  });

  test('any chunking gives the same events: whole, byte by byte, and uneven pieces', () => {
    const input = Buffer.from(
      'A1 LOGIN {5}\r\nalice "pw"\r\n\r\n' +
        'A2 APPEND Drafts (\\Seen) "17-Jul-1996 02:44:25 -0700" {12+}\r\nSubject: hi\n UTF8 (~{2}\r\n\x00\xff)\n' +
        'A3 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From To)]<0.2048>)\n' +
        'A4 BAD "unterminated\r\nA5 NOOP\r\n',
      'latin1',
    );
    const whole = parse(input);
    assert.deepEqual(
      whole.map((event) => (event.kind === 'command' ? event.command.tag : event.kind)),
      ['continue', 'A1', 'continue', 'A2', 'A3', 'error', 'A5'],
    );
    assert.deepEqual(parseInPieces(input, [1]), whole);
    assert.deepEqual(parseInPieces(input, [3, 7, 1, 13, 2]), whole);
    for (let cut = 1; cut < input.length; cut++)
      assert.deepEqual(parseInPieces(input, [cut, input.length]), whole);
  });

  test('bare LF ends lines as CRLF does, and empty lines are ignored', () => {
    const events = parse('\r\n\nA1 NOOP\n\r\nA2 LOGIN {1}\nx y\n');
    assert.deepEqual(
      commands(events).map((command) => [command.tag, command.bytes]),
      [
        ['A1', 8],
        ['A2', 17],
      ],
    );
  });

  test('a line over the limit is refused with its tag and skipped, a line at the limit is fine', () => {
    const limits = { ...LIMITS, maxLineBytes: 20 };
    const exact = `A1 X ${'y'.repeat(15)}`;
    assert.equal(only(parse(`${exact}\r\n`, limits)).tag, 'A1');
    const events = parseInPieces(`A2 X ${'y'.repeat(500)}\r\nA3 NOOP\r\n`, [1], limits);
    assert.deepEqual(events.slice(0, 1), [error('A2', 'Line too long')]);
    assert.equal(commands(events)[0].tag, 'A3');
    // A tag that cannot be seen any more is unknown.
    assert.deepEqual(parse(`${'t'.repeat(500)} NOOP\r\n`, limits), [error(null, 'Line too long')]);
    // A non-synchronising literal at the end of the long line is coming anyway: it is skipped.
    const skipped = parse(`A4 X ${'y'.repeat(50)} {9+}\r\nA5 NOOP\r\n\r\nA6 NOOP\r\n`, limits);
    assert.deepEqual(skipped[0], error('A4', 'Line too long'));
    assert.deepEqual(
      commands(skipped).map((command) => command.tag),
      ['A6'],
    );
  });

  test('a synchronising literal over the limit is refused without "+" and the next line is a new command', () => {
    const events = parse('A1 APPEND INBOX {101}\r\nA2 NOOP\r\n');
    assert.deepEqual(events[0], { kind: 'literal-refused', tag: 'A1', message: 'Literal is too large' });
    assert.deepEqual(
      commands(events).map((command) => command.tag),
      ['A2'],
    );
    // The same for a literal that fits but would make the command too large.
    const big = parse(`A3 X {100}\r\n${`${'x'.repeat(100)} {100}\r\n`.repeat(3)}`);
    assert.deepEqual(
      big.map((event) => event.kind),
      ['continue', 'continue', 'continue', 'literal-refused'],
    );
    // Huge sizes are just too large.
    assert.equal(parse('A4 X {99999999999999999999}\r\n')[0].kind, 'error');
    assert.equal(parse('A4 X {9999999999999999999}\r\n')[0].kind, 'literal-refused');
  });

  test('a non-synchronising literal over the limit is read and dropped, with an error for its command', () => {
    const input = `A1 APPEND INBOX {150+}\r\n${'A2 NOOP\r\n'.repeat(16)}xxxxxx (\\Seen) {3+}\r\nabc\r\nA3 NOOP\r\n`;
    for (const sizes of [[input.length], [1], [10, 100, 1]]) {
      const events = parseInPieces(input, sizes);
      assert.deepEqual(events, [
        error('A1', '[TOOBIG] Literal is too large'),
        { kind: 'command', command: { tag: 'A3', name: 'NOOP', uid: false, args: [], bytes: 9 } },
      ]);
    }
  });

  test('a command over the size limit is refused, its remaining literals skipped', () => {
    const line = `{60+}\r\n${'z'.repeat(60)} `;
    const events = parse(`A1 X ${line.repeat(10)}\r\nA2 NOOP\r\n`);
    assert.deepEqual(events[0], error('A1', '[TOOBIG] Literal is too large'));
    assert.deepEqual(
      commands(events).map((command) => command.tag),
      ['A2'],
    );
    const lines = parse(`A3 X ${`{0}\r\n${' a'.repeat(90)} `.repeat(5)}\r\nA4 NOOP\r\n`, {
      ...LIMITS,
      maxTokens: 10_000,
    });
    assert.ok(lines.some((event) => event.kind === 'error' && event.message === 'Command too long'));
    assert.equal(commands(lines).at(-1)?.tag, 'A4');
  });

  test('nesting and token limits', () => {
    assert.equal(only(parse('A1 X ((((a))))\r\n')).tag, 'A1');
    assert.deepEqual(parse('A2 X (((((a)))))\r\n'), [error('A2', 'Too deeply nested')]);
    assert.deepEqual(parse('A3 X (((BODY[HEADER.FIELDS (A)])))\r\n'), [error('A3', 'Too deeply nested')]);
    assert.deepEqual(parse(`A4 X${' a'.repeat(60)}\r\n`), [error('A4', 'Too many arguments')]);
    const defaults = new CommandParser({
      maxLineBytes: 100_000,
      maxLiteralBytes: 10,
      maxCommandBytes: 100_000,
      maxDepth: 4,
    });
    assert.deepEqual(defaults.push(Buffer.from(`A5 X${' a'.repeat(10_001)}\r\n`)), [
      error('A5', 'Too many arguments'),
    ]);
  });

  test('malformed commands get an error with their tag when it is known, and parsing recovers', () => {
    const cases: [string, ParserEvent][] = [
      ['A1 FETCH 1 (FLAGS', error('A1', 'Unclosed "("')],
      ['A2 FETCH 1 FLAGS)', error('A2', 'Unbalanced ")"')],
      ['A3 FETCH 1 BODY[TEXT', error('A3', 'Unclosed "["')],
      ['A4 FETCH 1 (BODY[1]])', error('A4', 'Expected a space between arguments')],
      ['A5 FETCH 1 (FLAGS)(UID)', error('A5', 'Expected a space between arguments')],
      ['A6 LOGIN "a"b', error('A6', 'Expected a space between arguments')],
      ['A7', error('A7', 'Missing command name')],
      ['A8 ', error('A8', 'Missing command name')],
      ['A9 UID', error('A9', 'Missing command name')],
      ['A10 "LOGIN" a b', error('A10', 'Invalid command name')],
      ['A11 X\tY', error('A11', 'Invalid character 0x09')],
      [' A12 NOOP', error(null, 'Missing tag')],
      ['+ NOOP', error(null, 'Invalid tag')],
      ['* NOOP', error(null, 'Invalid tag')],
      ['"A13" NOOP', error(null, 'Invalid tag')],
      ['A{14} NOOP', error(null, 'Invalid tag')],
      ['(', error(null, 'Invalid tag')],
    ];
    for (const [line, expected] of cases) {
      assert.deepEqual(parse(`${line}\r\nZ1 NOOP\r\n`), [expected, ...parse('Z1 NOOP\r\n')], line);
    }
    // "]" outside a section is an ordinary astring character.
    assert.deepEqual(only(parse('A15 X a]\r\n')).args, [atom('a]')]);
  });

  test('a broken line of a longer command ends the whole command', () => {
    // The error comes after the first literal; the rest of the command is skipped, A2 is not part of it.
    const events = parse('A1 LOGIN {3}\r\nbob ("x\r\nA2 NOOP\r\n');
    assert.deepEqual(events, [CONTINUE, error('A1', 'Unterminated quoted string'), ...parse('A2 NOOP\r\n')]);
    // A broken first line announcing a LITERAL+ literal: the literal is skipped, then its command's last line.
    const skipped = parse('A3 FOO ) {7+}\r\nA4 NOOP\r\nA5 NOOP\r\n');
    assert.deepEqual(skipped, [error('A3', 'Unbalanced ")"'), ...parse('A5 NOOP\r\n')]);
    // A synchronising one is not sent by the client once it has the error instead of "+".
    const sync = parse('A6 FOO ) {7}\r\nA7 NOOP\r\n');
    assert.deepEqual(sync, [error('A6', 'Unbalanced ")"'), ...parse('A7 NOOP\r\n')]);
  });

  test('expectLine returns the next line raw, once', () => {
    const parser = new CommandParser(LIMITS);
    assert.deepEqual(parser.push(Buffer.from('A1 AUTHENTICATE PLAIN\r\n')).length, 1);
    parser.expectLine();
    assert.deepEqual(parser.push(Buffer.from('AGFsaWNl')), []);
    assert.deepEqual(parser.push(Buffer.from('AHNlY3JldA==\r\nA2 NOOP\r\n')), [
      { kind: 'line', line: 'AGFsaWNlAHNlY3JldA==' },
      ...parse('A2 NOOP\r\n'),
    ]);
    parser.expectLine();
    assert.deepEqual(parser.push(Buffer.from('\r\n')), [{ kind: 'line', line: '' }]);
    parser.expectLine();
    assert.deepEqual(parser.push(Buffer.from(`${'x'.repeat(300)}\r\nDONE\r\n`)), [
      error(null, 'Line too long'),
      error('DONE', 'Missing command name'),
    ]);
  });

  test('a long line without a line end does not pile up', () => {
    const parser = new CommandParser({ ...LIMITS, maxLineBytes: 1024 });
    const chunk = Buffer.alloc(1 << 20, 'a');
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 64; i++) assert.deepEqual(parser.push(chunk), []);
    assert.ok(process.memoryUsage().arrayBuffers - before < 32 << 20, 'no 64 MiB line buffer');
    assert.deepEqual(parser.push(Buffer.from('\r\nA1 NOOP\r\n')), [
      error(null, 'Line too long'),
      ...parse('A1 NOOP\r\n'),
    ]);
  });

  test('a long word full of [ costs time in proportion to its length (no rescans)', () => {
    const limits = { ...LIMITS, maxLineBytes: 300 * 1024, maxCommandBytes: 400 * 1024 };
    const started = performance.now();
    const events = parse(`a x${'['.repeat(250 * 1024)}\r\nb NOOP\r\n`, limits);
    assert.ok(performance.now() - started < 500, `${performance.now() - started} ms`);
    assert.equal(commands(events).at(-1)?.name, 'NOOP');
  });

  test('setLimits raises the literal limit from the next literal on', () => {
    const parser = new CommandParser(LIMITS);
    assert.equal(parser.push(Buffer.from('a LOGIN {150}\r\n'))[0].kind, 'literal-refused');
    parser.setLimits({ maxLiteralBytes: 1000, maxCommandBytes: 2000 });
    assert.equal(parser.push(Buffer.from('b APPEND INBOX {150}\r\n'))[0].kind, 'continue');
  });
});
