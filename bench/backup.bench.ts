// Backup and restore of an organisation with a realistic amount of mail: BENCH_BACKUP_MESSAGES (5,000)
// stored messages of about 10 KB each (headers, a text body, a base64 attachment: what a mailbox holds),
// with their raw bytes, mailbox copies and events, about 50 MB in all. The messages are written with
// SQL (5,000 SMTP sessions would measure the MX, not backups); a domain and a mailbox come through the
// API. Then `mailroom backup`'s path (the service writing the archive to a file), timed BENCH_RUNS (3)
// times, and a restore of that file as a new organisation beside the source (ids remapped, every row
// inserted in one transaction). Throughput is the organisation's data (each value's text, raw message
// bytes as they are, and each value's length: the archive before compression) per second of backup,
// with the CPU time this process spent per backup (all its threads; not PostgreSQL's), steadier than
// the wall time on a shared machine. The first run also starts the archive's thread (later ones reuse
// it).
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Mailroom } from '../src/app.ts';
import { DatabaseBlobStore } from '../src/core/blobs.ts';
import { newId } from '../src/core/ids.ts';
import { benchEngines, type Engine, json, peakRssMb, percentile, type Row, withBenchApp } from './support.ts';

const MESSAGES = Number(process.env.BENCH_BACKUP_MESSAGES ?? 5_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TARGET_MB_PER_SECOND = 50;
const WORDS =
  'thanks for the invoice please find attached the report for the quarter meeting schedule regards'.split(
    ' ',
  );

/** A raw message of about 10 KB: headers, a paragraph of text, a base64 attachment. */
function rawMessage(i: number, to: string): Buffer {
  const text = Array.from({ length: 300 }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(' ');
  const attachment = randomBytes(4_500).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      `Received: from client${i % 50}.example.net ([198.51.100.${i % 250}]) by mx.bench.example; Mon, 4 Jan 2027 10:00:00 +0000`,
      `From: Customer ${i} <customer${i}@example.net>`,
      `To: ${to}`,
      `Subject: Quarterly report ${i}`,
      `Message-ID: <${i}.bench@example.net>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      text,
      '--b',
      'Content-Type: application/pdf; name="report.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      attachment,
      '--b--',
      '',
    ].join('\r\n'),
  );
}

async function seed(
  app: Mailroom,
  orgId: string,
  domainId: string,
  mailboxId: string,
  address: string,
): Promise<number> {
  const { database } = app;
  const [{ id: folderId }] = (
    await database.query<{ id: string }>(
      `select id::text from mailbox_folders where mailbox_id = $1 and special_use = '\\Inbox'`,
      [mailboxId],
    )
  ).rows;
  let bytes = 0;
  const BATCH = 500;
  for (let from = 0; from < MESSAGES; from += BATCH) {
    const n = Math.min(BATCH, MESSAGES - from);
    const blobs = Array.from({ length: n }, (_, k) => ({
      organizationId: orgId,
      id: newId(),
      data: rawMessage(from + k, address),
    }));
    const ids = blobs.map(() => newId());
    for (const b of blobs) bytes += b.data.length;
    await new DatabaseBlobStore(database.db).put(database.db, blobs);
    const body = blobs.map((_, k) => `thanks for the invoice ${from + k} `.repeat(20));
    await database.query(
      `insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from, rcpt_to,
                             from_address, subject, body_text, to_addresses, processed_at, received_at)
       select m.id, $1, $2, 'inbound', 'delivered', m.blob_id, m.size, m.mail_from, array[$3::text], m.mail_from,
              m.subject, m.body, array[$3::text], now(), now() - (m.n || ' seconds')::interval
         from unnest($4::uuid[], $5::uuid[], $6::int[], $7::text[], $8::text[], $9::text[], $10::int[])
              as m(id, blob_id, size, mail_from, subject, body, n)`,
      [
        orgId,
        domainId,
        address,
        ids,
        blobs.map((b) => b.id),
        blobs.map((b) => b.data.length),
        blobs.map((_, k) => `customer${from + k}@example.net`),
        blobs.map((_, k) => `Quarterly report ${from + k}`),
        body,
        blobs.map((_, k) => MESSAGES - from - k),
      ],
    );
    await database.query(
      `insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, size, delivered)
       select gen_random_uuid(), $1, $2, $3, m.id, m.uid, m.size, true
         from unnest($4::uuid[], $5::bigint[], $6::int[]) as m(id, uid, size)`,
      [orgId, mailboxId, folderId, ids, ids.map((_, k) => from + k + 1), blobs.map((b) => b.data.length)],
    );
    await database.query(
      `insert into events (id, organization_id, type, data)
       select gen_random_uuid(), $1, 'message.received', jsonb_build_object('message_id', m.id, 'subject', m.subject)
         from unnest($2::uuid[], $3::text[]) as m(id, subject)`,
      [orgId, ids, blobs.map((_, k) => `Quarterly report ${from + k}`)],
    );
  }
  return bytes;
}

/** CPU seconds of this process (every thread) since `since`. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1e6;
}

async function measure(engine: Engine): Promise<Row[]> {
  return withBenchApp(engine, {}, {}, async ({ app, port, token, org }) => {
    const domain = await json(
      port,
      'POST',
      '/v1/domains',
      { name: 'backup.bench.example', dkim: { algorithm: 'ed25519' } },
      token,
    );
    const mailbox = await json(
      port,
      'POST',
      '/v1/mailboxes',
      { address: 'inbox@backup.bench.example', password: 'bench mailbox passphrase' },
      token,
    );
    if (!domain.id || !mailbox.id) throw new Error(`seed: ${JSON.stringify({ domain, mailbox })}`);
    const messageBytes = await seed(app, org.id, domain.id, mailbox.id, 'inbox@backup.bench.example');
    const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-backup-bench-'));
    try {
      const file = path.join(dir, 'org.mrbackup.zst');
      const times: number[] = [];
      const cpu: number[] = [];
      let stream = 0;
      let rows = 0;
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        const usage = process.cpuUsage();
        const result = await app.services.backups.backupTo(org.id, createWriteStream(file));
        times.push((performance.now() - started) / 1000);
        cpu.push(cpuSeconds(usage));
        stream = result.stats.streamBytes;
        rows = result.trailer.rows;
      }
      const archive = statSync(file).size;
      const startedRestore = performance.now();
      const restoreUsage = process.cpuUsage();
      const restored = await app.services.backups.restoreFrom(createReadStream(file), {
        mode: 'new_organization',
        name: 'Bench copy',
      });
      const restoreSeconds = (performance.now() - startedRestore) / 1000;
      const restoreCpu = cpuSeconds(restoreUsage);
      if (restored.rows !== rows) throw new Error(`restored ${restored.rows} rows of ${rows}`);
      const sorted = [...times].sort((a, b) => a - b);
      const mb = stream / 1_048_576;
      const best = mb / sorted[0];
      const workload = `${MESSAGES.toLocaleString('en')} messages, ${(messageBytes / 1_048_576).toFixed(0)} MB raw; ${rows.toLocaleString('en')} rows, ${mb.toFixed(0)} MB data → ${(archive / 1_048_576).toFixed(1)} MB archive`;
      return [
        {
          benchmark: `backup (${engine})`,
          workload,
          throughput: `${(mb / percentile(sorted, 50)).toFixed(0)} MB/s (best ${best.toFixed(0)}); CPU ${percentile(
            [...cpu].sort((a, b) => a - b),
            50,
          ).toFixed(2)} s`,
          p50: `${percentile(sorted, 50).toFixed(2)} s`,
          p99: `${sorted[sorted.length - 1].toFixed(2)} s`,
          peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
          target: `≥ ${TARGET_MB_PER_SECOND} MB/s ${mb / percentile(sorted, 50) >= TARGET_MB_PER_SECOND ? '✔' : '✘'}`,
        },
        {
          benchmark: `restore as new organisation (${engine})`,
          workload,
          throughput: `${restoreSeconds.toFixed(2)} s; ${(mb / restoreSeconds).toFixed(0)} MB/s; CPU ${restoreCpu.toFixed(2)} s`,
          p50: '–',
          p99: '–',
          peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
          target: '–',
        },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await measure(engine)));
  return rows;
}
