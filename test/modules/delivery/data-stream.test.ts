// The DATA fast path lets through only chunks that nodemailer's dot-stuffing loop would leave as they are.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { passesAsIs } from '../../../src/modules/delivery/transport/data-stream.ts';

test('clean CRLF text passes as it is; anything the loop would change does not', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  assert.equal(passesAsIs(b('Subject: x\r\n\r\nline one\r\nline two\r\n'), false), true);
  assert.equal(passesAsIs(b('no line end at all'), 0x0a), true);
  assert.equal(passesAsIs(b('a\r\n.dot-started line\r\n'), false), false);
  assert.equal(passesAsIs(b('.first line starts with a dot\r\n'), false), false);
  assert.equal(passesAsIs(b('.after a line end in the last chunk'), 0x0a), false);
  assert.equal(passesAsIs(b('.mid-line continuation'), 0x61), true);
  assert.equal(passesAsIs(b('bare\nLF\r\n'), false), false);
  assert.equal(passesAsIs(b('bare\rCR\r\n'), false), false);
  assert.equal(passesAsIs(b('ends with CR\r'), false), false);
  assert.equal(passesAsIs(b('\nstarts with LF'), 0x61), false);
  assert.equal(passesAsIs(b('LF after CR of the last chunk'), 0x0d), false);
  assert.equal(passesAsIs(Buffer.alloc(0), false), false);
});
