// Gmail's IMAP extension (X-GM-EXT-1) in front of a Dovecot, for tests of how the sync keeps labels and
// stores a message in several labels once. Gmail shows each label as a folder and gives every message a
// permanent id (X-GM-MSGID) that is the same in every folder it is in; Dovecot keeps a message's GUID
// (X-GUID) across COPY, so the proxy answers X-GM-MSGID from X-GUID and X-GM-LABELS from the selected
// folder (one label per folder, as Gmail shows a message in the folder of each of its labels). It reads
// both directions line by line and passes literals through untouched.
import { createHash } from 'node:crypto';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

export type GmailProxy = TcpProxy;

const LITERAL = /\{(\d+)\+?\}\r\n$/;

/** Calls `onLine` for each line (with its CRLF) and passes literal bytes to `onLiteral` as they come. */
function lineReader(onLine: (line: string) => void, onLiteral: (bytes: Buffer) => void) {
  let pending = Buffer.alloc(0);
  let literal = 0;
  return (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length) {
      if (literal > 0) {
        const take = Math.min(literal, pending.length);
        onLiteral(pending.subarray(0, take));
        pending = pending.subarray(take);
        literal -= take;
        continue;
      }
      const end = pending.indexOf('\r\n');
      if (end < 0) return;
      const line = pending.subarray(0, end + 2).toString('latin1');
      pending = pending.subarray(end + 2);
      literal = Number(LITERAL.exec(line)?.[1] ?? 0);
      onLine(line);
    }
  };
}

/** Gmail's message ids are 64-bit numbers; this one is made from Dovecot's GUID. */
const messageIdOf = (guid: string) =>
  BigInt(`0x${createHash('sha256').update(guid).digest('hex').slice(0, 15)}`).toString();

const labelOf = (folder: string) => (folder.toUpperCase() === 'INBOX' ? '"\\\\Inbox"' : `"${folder}"`);

export function startGmailProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<GmailProxy> {
  return startTcpProxy(targetPort, targetHost, (client, upstream) => {
    let selected = '';
    let labelsWanted = false;

    client.on(
      'data',
      lineReader(
        (line) => {
          const select = /^\S+ (?:SELECT|EXAMINE) (?:"((?:[^"\\]|\\.)*)"|(\S+))/i.exec(line);
          if (select) selected = select[1] ?? select[2];
          let command = line;
          if (/^\S+ (?:UID )?FETCH /i.test(line)) {
            labelsWanted = /X-GM-LABELS/i.test(line);
            command = line.replace(/ X-GM-LABELS| X-GM-THRID/gi, '').replace(/X-GM-MSGID/gi, 'X-GUID');
          }
          upstream.write(Buffer.from(command, 'latin1'));
        },
        (bytes) => upstream.write(bytes),
      ),
    );
    upstream.on(
      'data',
      lineReader(
        (line) => {
          let answer = line.replace(/(CAPABILITY IMAP4rev1)/, '$1 X-GM-EXT-1');
          answer = answer.replace(
            /X-GUID (\S+?)(?=[ )])/g,
            (_, guid: string) => `X-GM-MSGID ${messageIdOf(guid)}`,
          );
          if (labelsWanted && /^\* \d+ FETCH \(/.test(answer))
            answer = answer.replace(/FETCH \(/, `FETCH (X-GM-LABELS (${labelOf(selected)}) `);
          if (/^[A-Za-z0-9.]+ (?:OK|NO|BAD)/.test(answer)) labelsWanted = false;
          client.write(Buffer.from(answer, 'latin1'));
        },
        (bytes) => client.write(bytes),
      ),
    );
  });
}
