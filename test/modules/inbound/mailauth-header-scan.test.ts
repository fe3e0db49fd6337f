// The MX's replacement for mailauth's header scan (src/modules/inbound/mailauth-header-scan.ts) against
// mailauth's own method: split anywhere, every message leaves the parser in the same state, with the same
// header and the same body handed on.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { useFastHeaderScan } from '../../../src/modules/inbound/mailauth-header-scan.ts';

const require = createRequire(import.meta.url);
const { MessageParser } = require('mailauth/lib/dkim/message-parser.js');
const original = MessageParser.prototype.processChunk;
useFastHeaderScan();
const replaced = MessageParser.prototype.processChunk;

class Probe extends MessageParser {
  body: Buffer[] = [];
  async nextChunk(chunk: Buffer) {
    this.body.push(Buffer.from(chunk));
  }
  async messageHeaders() {}
}

async function feed(method: (chunk: Buffer) => Promise<void>, chunks: Buffer[]) {
  const parser = new Probe();
  for (const chunk of chunks) await method.call(parser, chunk);
  return {
    state: parser.state,
    stateBytes: parser.stateBytes,
    headers: parser.headers,
    header: Buffer.concat(parser.headerChunks).toString('latin1'),
    body: Buffer.concat(parser.body).toString('latin1'),
  };
}

const messages = [
  'From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody line\r\n\r\nmore\r\n',
  'From: a@example.com\nSubject: lf only\n\nbody\n',
  'Subject: folded\r\n continued\r\n\r\n',
  'Subject: no header end\r\nFrom: a@example.com\r\n',
  '\r\n\r\nempty header',
  '\n\nx',
  'A: 1\n\r\nmixed ending\n',
  'A: 1\r\nB: 2\r\n\r\n\r\n\r\nblank lines in the body\r\n',
  '',
  'X',
];

/** Every way to cut a message in two and three places, and into single bytes. */
function splits(text: string): Buffer[][] {
  const bytes = Buffer.from(text, 'latin1');
  const out: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let i = 0; i <= bytes.length; i++)
    for (let j = i; j <= bytes.length; j += 3)
      out.push([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)].filter((c) => c.length));
  return out;
}

describe('mailauth header scan', () => {
  test('leaves the parser as mailauth’s own scan does, however the message is split', async () => {
    let cases = 0;
    for (const message of messages)
      for (const chunks of splits(message)) {
        assert.deepEqual(await feed(replaced, chunks), await feed(original, chunks), JSON.stringify(message));
        cases++;
      }
    assert.ok(cases > 300);
  });
});
