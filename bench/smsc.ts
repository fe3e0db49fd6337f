// The local SMSC of the SMS benchmark (test/support/smpp-server.ts) in a process of its own, so that
// answering submits does not share Mailroom's CPU time. It sends a delivery receipt for each submit as
// soon as it has answered it, and keeps when it sent each (by destination) for the latency figure.
import { startSmppServer } from '../test/support/smpp-server.ts';

const smsc = await startSmppServer();
let submits = 0;
const receiptAt = new Map<string, number>();

// Each submit is answered as it arrives; receipts follow in the next turn of the event loop.
const sendReceipts = () => {
  const waiting = smsc.submits;
  while (waiting.length) {
    const submit = waiting[0];
    if (submit.registeredDelivery & 0x01) {
      receiptAt.set(submit.destinationAddr, Date.now());
      smsc.sendReceipt(submit.messageId).catch(() => {});
    }
    // The server finds a receipt's submit by a scan of this list: it is kept short.
    waiting.shift();
    submits++;
  }
};
setInterval(sendReceipts, 2);

process.on('message', (message: { report?: true }) => {
  if (!message.report) return;
  sendReceipts();
  process.send!({ submits, binds: smsc.binds, receiptAt: [...receiptAt] });
});
process.send!({ host: smsc.host, port: smsc.port, systemId: smsc.systemId, password: smsc.password });
