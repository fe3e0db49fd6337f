// The thread pool (src/core/threads.ts) with the processing parser's real thread: buffers handed over
// move instead of being copied, both ways, and a thread's answer is the inline answer.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ThreadPool } from '../../src/core/threads.ts';
import { parseTasks } from '../../src/modules/inbound/parse.ts';

const script = new URL('../../src/modules/inbound/parse-thread.ts', import.meta.url);
const message = Buffer.from(
  'From: Zoë <zoe@example.com>\r\nTo: team@example.net\r\nSubject: Grüße\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n\r\nSchöne Grüße aus Köln, and plain words.\r\n',
);

describe('thread pool', () => {
  const threaded = new ThreadPool(script, 1, async () => parseTasks);
  const inline = new ThreadPool(script, 0, async () => parseTasks);
  after(() => threaded.close());

  test('input buffers listed for transfer move to the thread; the text comes back moved, as UTF-8', async () => {
    const raw = new Uint8Array(message);
    const answer = await threaded.run('prepare', { raw, envelope: ['zoe@example.com', 'team@example.net'] }, [
      raw.buffer,
    ]);
    assert.equal(raw.byteLength, 0, 'the caller no longer holds the moved bytes');
    assert.ok(answer.text instanceof Uint8Array);
    assert.equal(Buffer.from(answer.text).toString(), 'Schöne Grüße aus Köln, and plain words.\n');
    const reference = await inline.run('prepare', {
      raw: new Uint8Array(message),
      envelope: ['zoe@example.com', 'team@example.net'],
    });
    assert.deepEqual({ ...answer, text: [...answer.text] }, { ...reference, text: [...reference.text] });
  });

  test('a failing task rejects its call and the thread goes on serving', async () => {
    await assert.rejects(threaded.run('prepare', { raw: 'not bytes' as never, envelope: [] }));
    const answer = await threaded.run('prepare', { raw: new Uint8Array(message), envelope: [] });
    assert.equal(answer.parsed.subject, 'Grüße');
  });
});
