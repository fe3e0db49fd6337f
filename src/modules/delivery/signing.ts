// Composing and signing outbound messages: the CPU work of sending (MIME, then an RSA or Ed25519
// signature per DKIM key), run in worker threads (core/threads.ts, sign-thread.ts) so the API's event
// loop only parses requests and writes the queue. Buffers arrive in a thread as plain Uint8Arrays.
import { type ComposeInput, composeMessage } from './compose.ts';
import { dkimSignatures, type SigningKey } from './dkim.ts';

export interface SignInput {
  domain: string;
  keys: SigningKey[];
}

const asBuffer = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** The message with its DKIM-Signature headers prepended. */
function signed(raw: Buffer, input: SignInput): Buffer {
  return Buffer.concat([dkimSignatures(raw, input.domain, input.keys), raw]);
}

export const signingTasks = {
  /** Composes a send request's message and signs it; `size` is the unsigned message's (the size limit's). */
  async compose(input: SignInput & { message: ComposeInput }): Promise<{ raw: Uint8Array; size: number }> {
    const message = {
      ...input.message,
      attachments: input.message.attachments.map((a) => ({ ...a, content: asBuffer(a.content) })),
    };
    const raw = await composeMessage(message);
    return { raw: signed(raw, input), size: raw.length };
  },
  /** Signs a message as it is (SMTP submission). */
  sign(input: SignInput & { raw: Uint8Array }): Uint8Array {
    return signed(asBuffer(input.raw), input);
  },
};
