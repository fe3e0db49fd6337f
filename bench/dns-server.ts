// The loopback DNS server for the domains benchmark, in a process of its own so answering does not
// share Mailroom's CPU time. Takes its zone over IPC, then answers `report` with the query counts.
import { startDnsServer, type TestRecords } from '../test/support/dns-server.ts';

const server = await startDnsServer();
process.on('message', (message: { zone?: [string, TestRecords][]; report?: true }) => {
  if (message.zone) {
    for (const [name, records] of message.zone) server.set(name, records);
    process.send!({ address: server.address });
  }
  if (message.report) process.send!({ queries: server.queries });
});
process.send!({ address: server.address });
