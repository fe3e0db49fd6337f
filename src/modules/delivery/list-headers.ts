// What an outbound message's header says about list mail, recorded with the message when it is queued
// (the health module's unsubscribe finding reads it):
//   bulk        it declares itself list or bulk mail: Precedence: bulk or list, a List-Id, or a
//               List-Unsubscribe (a sender offers unsubscribing only from mail sent to a list)
//   one-click   RFC 8058: a List-Unsubscribe with an https URI, and List-Unsubscribe-Post exactly
//               "List-Unsubscribe=One-Click" (both are covered by our DKIM signature, as RFC 8058 asks)

export interface ListHeaders {
  bulk: boolean;
  oneClickUnsubscribe: boolean;
}

/** `headers` as readHeaders gives them: lower-case names, unfolded values. */
export function listHeadersOf(headers: { name: string; value: string }[]): ListHeaders {
  const values = (name: string) => headers.filter((h) => h.name === name).map((h) => h.value.trim());
  const unsubscribe = values('list-unsubscribe');
  const precedence = values('precedence').map((v) => v.toLowerCase());
  const bulk =
    unsubscribe.length > 0 ||
    values('list-id').length > 0 ||
    precedence.some((p) => p === 'bulk' || p === 'list');
  const post = values('list-unsubscribe-post');
  const httpsUri = unsubscribe.some((v) => /<\s*https:\/\/[^>\s]+\s*>/i.test(v));
  const oneClickUnsubscribe =
    unsubscribe.length === 1 && httpsUri && post.length === 1 && post[0] === 'List-Unsubscribe=One-Click';
  return { bulk, oneClickUnsubscribe };
}
