// SMS contacts and campaigns at scale, on `mailroom start` as an operator runs it (one process: API,
// workers, the SMS queue), against a local SMSC in a process of its own (bench/smsc.ts) that answers
// every submit and sends a delivery receipt right after.
// - import: a 100,000-row contact CSV posted to /v1/sms/contacts/imports, timed from the POST until its
//   job has finished.
// - campaign: a template to those 100,000 contacts through the SMPP gateway, timed from the start until
//   every recipient is sent (messages/s); receipt to status: from the SMSC sending a recipient's receipt
//   until the recipient shows `delivered` (its delivered_at).
// BENCH_PROF=start writes the server's V8 CPU profile to /tmp/prof-sms/.
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import {
  ask,
  benchAccount,
  benchEngines,
  benchInstallation,
  type Engine,
  json,
  peakRssMb,
  percentile,
  type Row,
  serverSet,
} from './support.ts';

const CONTACTS = Number(process.env.BENCH_SMS_CONTACTS ?? 100_000);
const IMPORT_TARGET = 20_000;
const SEND_TARGET = 1_000;

interface Smsc {
  host: string;
  port: number;
  systemId: string;
  password: string;
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await smsBench(engine)));
  return rows;
}

async function smsBench(engine: Engine): Promise<Row[]> {
  const { env, cleanup } = await benchInstallation(engine);
  const child: ChildProcess = fork(path.resolve('bench/smsc.ts'), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const smsc = await new Promise<Smsc>((resolve) => child.once('message', (m) => resolve(m as Smsc)));
  const { start, stopAll } = serverSet('/tmp/prof-sms');
  try {
    const server = await start(env, 'start', engine);
    const port = server.port;
    const { token } = await benchAccount(port);
    const account = await json(
      port,
      'POST',
      '/v1/provider-accounts',
      {
        provider: 'smpp',
        name: 'Bench SMSC',
        credentials: {
          host: smsc.host,
          port: String(smsc.port),
          system_id: smsc.systemId,
          password: smsc.password,
          source_addr: 'Mailroom',
        },
      },
      token,
    );
    if (!account.id) throw new Error(`provider account: ${JSON.stringify(account)}`);
    const list = await json(port, 'POST', '/v1/sms/lists', { name: 'Everyone' }, token);
    const importRow = await importContacts(engine, port, token, list.id, server.child.pid!);
    const campaignRow = await sendCampaign(
      engine,
      port,
      token,
      list.id,
      account.id,
      child,
      server.child.pid!,
    );
    return [importRow, campaignRow];
  } finally {
    await stopAll();
    child.kill();
    await cleanup();
  }
}

async function importContacts(
  engine: Engine,
  port: number,
  token: string,
  listId: string,
  pid: number,
): Promise<Row> {
  const lines = ['phone,name,company,city,tags'];
  for (let i = 0; i < CONTACTS; i++)
    lines.push(
      `+1415${String(2_000_000 + i).padStart(7, '0')},Person ${i},Company ${i % 977},City ${i % 53},t${i % 7};bench`,
    );
  const csv = `${lines.join('\n')}\n`;
  const began = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/sms/contacts/imports?list_id=${listId}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
    body: csv,
  });
  const started = (await res.json()) as any;
  if (res.status !== 202) throw new Error(`import: ${res.status} ${JSON.stringify(started)}`);
  let done: any;
  for (;;) {
    done = await json(port, 'GET', `/v1/sms/contacts/imports/${started.id}`, undefined, token);
    if (done.job.state !== 'queued' && done.job.state !== 'running') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - began) / 1000;
  if (done.job.state !== 'succeeded' || done.created !== CONTACTS)
    throw new Error(`import ended ${done.job.state}: ${JSON.stringify(done).slice(0, 500)}`);
  const rate = CONTACTS / seconds;
  return {
    benchmark: `sms contact import (${engine})`,
    workload: `${CONTACTS.toLocaleString('en')}-row CSV (${(csv.length / 1e6).toFixed(1)} MB, 5 columns) posted as text/csv to \`mailroom start\`, into a list; POST until the job finished (${seconds.toFixed(1)} s)`,
    throughput: `${Math.round(rate).toLocaleString('en')} rows/s`,
    p50: '–',
    p99: '–',
    peakRss: `${Math.round(peakRssMb(pid))} MB (server)`,
    target: `≥ ${IMPORT_TARGET.toLocaleString('en')}/s ${rate >= IMPORT_TARGET ? '✔' : '✘'}`,
  };
}

async function sendCampaign(
  engine: Engine,
  port: number,
  token: string,
  listId: string,
  accountId: string,
  smsc: ChildProcess,
  pid: number,
): Promise<Row> {
  const template = await json(
    port,
    'POST',
    '/v1/sms/templates',
    { name: 'Bench', body: 'Hi {{ contact.first_name }}, {{ contact.fields.company }} has news for you.' },
    token,
  );
  const campaign = await json(
    port,
    'POST',
    '/v1/sms/campaigns',
    { name: 'Bench', template_id: template.id, list_id: listId, provider_account_id: accountId },
    token,
  );
  const C = `/v1/sms/campaigns/${campaign.id}`;
  const began = performance.now();
  const started = await json(port, 'POST', `${C}/start`, {}, token);
  if (started.status !== 'scheduled') throw new Error(`start: ${JSON.stringify(started)}`);
  let state: any;
  let sentAt = 0;
  for (;;) {
    state = await json(port, 'GET', C, undefined, token);
    const sent = state.progress.sent + state.progress.delivered;
    if (!sentAt && sent + state.progress.failed >= CONTACTS) sentAt = performance.now();
    if (state.progress.delivered + state.progress.failed >= CONTACTS || state.status === 'completed') break;
    if (performance.now() - began > 900_000)
      throw new Error(`campaign stalled: ${JSON.stringify(state.progress)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  if (!sentAt) sentAt = performance.now();
  const seconds = (sentAt - began) / 1000;
  const report = await ask<{ submits: number; receiptAt: [string, number][] }>(smsc, { report: true });
  // Receipt to status: when the SMSC sent each receipt, against when the recipient became delivered.
  const receiptAt = new Map(report.receiptAt);
  const latencies: number[] = [];
  for (let page = 1; ; page++) {
    const found = await json(
      port,
      'GET',
      `${C}/recipients?status=delivered&page_size=200&page=${page}`,
      undefined,
      token,
    );
    for (const r of found.items) {
      const at = receiptAt.get(r.phone.slice(1));
      if (at !== undefined && r.delivered_at) latencies.push(Date.parse(r.delivered_at) - at);
    }
    if (page >= found.total_pages) break;
  }
  latencies.sort((a, b) => a - b);
  const rate = CONTACTS / seconds;
  if (report.submits !== CONTACTS)
    throw new Error(`the SMSC had ${report.submits} submits for ${CONTACTS} recipients`);
  return {
    benchmark: `sms campaign to SMPP (${engine})`,
    workload: `${CONTACTS.toLocaleString('en')} recipients, Liquid template, one SMPP bind to a local SMSC (receipt per message); start until all sent (${seconds.toFixed(1)} s); latency: receipt sent → recipient delivered (${latencies.length.toLocaleString('en')} receipts)`,
    throughput: `${Math.round(rate).toLocaleString('en')} SMS/s`,
    p50: `${Math.round(percentile(latencies, 50))} ms`,
    p99: `${Math.round(percentile(latencies, 99))} ms`,
    peakRss: `${Math.round(peakRssMb(pid))} MB (server)`,
    target: `≥ ${SEND_TARGET.toLocaleString('en')}/s ${rate >= SEND_TARGET ? '✔' : '✘'}`,
  };
}
