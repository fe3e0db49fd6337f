// Health: a score from 0 to 100 for every domain and mailbox, with the findings behind it, and the
// repairs an organisation's policy asks for.
//
// Recomputing, step by step:
//   claim     due subjects, a batch at a time, leased (SKIP LOCKED: any number of workers share a sweep)
//   evaluate  per organisation and kind, every input that scores that kind, side by side; an input that
//             fails keeps its previous findings
//   score     100 minus each input's penalties up to its weight (scorer.ts)
//   record    score, findings, a history point when something changed (and daily), health.changed when
//             the band or the findings changed: one transaction per batch
//   repair    what the policy asks for the new score: pause the sender (its mail is held), slow its
//             warmup, publish drifted DNS records again; each action recorded, announced and mailed
//
// Subjects are due on a schedule (MAILROOM_HEALTH_INTERVAL) and again within seconds when an input's
// trigger event names them (marked in the emitting transaction, or after the commit for frequent ones).
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import type { Mailer } from '../../core/mailer.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { OutboundService, PausedSender } from '../delivery/service.ts';
import type { DkimChoice, DnsChange, DomainsService } from '../domains/service.ts';
import type { EventInput, EventRecord, EventsService } from '../events/service.ts';
import { eventOf } from '../events/service.ts';
import type { MailboxesService } from '../mailboxes/service.ts';
import { healthChanged, healthRepair } from './events.ts';
import { DRIFT_CODES } from './inputs/dns.ts';
import type {
  Finding,
  HealthInput,
  InputBatch,
  Subject,
  SubjectKind,
  SubjectSelector,
} from './inputs/types.ts';
import { type HealthPolicy, policyOfRow } from './policy.ts';
import { type InputShare, fingerprint, score } from './scorer.ts';
import * as store from './store.ts';
import type { ActionKind, HealthActionRow, HealthScoreRow, StoredFinding } from './tables.ts';

export type { HealthInput, HealthInputProvider, Finding, SubjectKind } from './inputs/types.ts';
export type { HealthPolicy } from './policy.ts';

/** The queues: the scheduled sweep, and the one a trigger wakes soon (stately: one waiting at most). */
export const SWEEP_QUEUE = 'health.sweep';
export const SOON_QUEUE = 'health.soon';

const BATCH = 500;
const LEASE_MS = 5 * 60_000;
/** A batch whose computation failed is tried again this much later. */
const RETRY_MS = 5 * 60_000;
/** A history point at least this often, even when nothing changed. */
const HISTORY_EVERY_MS = 86_400_000;
/** DNS is published again at most this often per domain (a record the provider keeps refusing). */
const REPUBLISH_COOLDOWN_MS = 3_600_000;
/** How often an on-demand check looks whether a sweep still holds its subject. */
const CLAIM_POLL_MS = 25;
/** Trigger events handled after their commit are gathered this long. */
const GATHER_MS = 1_000;

export interface HealthOptions {
  db: Db;
  events: EventsService;
  jobs: Jobs;
  clock: Clock;
  mailer: Mailer;
  log: Logger;
  domains: DomainsService;
  mailboxes: MailboxesService;
  outbound: OutboundService;
  /** The organisation's owners' and admins' addresses (notifications). */
  adminEmails: (organizationId: string) => Promise<string[]>;
  inputs: HealthInput[];
  intervalMs: number;
  /** How soon a subject an event names is recomputed. */
  dirtyDelayMs: number;
  historyRetentionMs: number;
}

/** Who asked (a user or an API key), or nobody (the policy). */
export interface Actor {
  id: string | null;
}

/** What the warmup module (and anyone else) reads: is this sender paused, is its warmup slowed. */
export interface RepairState {
  paused: boolean;
  slowed: boolean;
  /** The actions in effect, the domain's first. */
  actions: { id: string; action: 'pause' | 'slow_warmup'; kind: SubjectKind; reason: string }[];
}

export interface SubjectDetail {
  row: HealthScoreRow;
  inputs: InputShare[];
  history: { at: Date; score: number; band: string; codes: string[] }[];
  /** For a mailbox: its domain's score. */
  domain: HealthScoreRow | null;
}

interface Planned {
  row: HealthScoreRow;
  score: number;
  findings: StoredFinding[];
}

/** One recomputation run: what inputs read for a whole organisation is read once. */
class Run {
  readonly #memo = new Map<string, Promise<unknown>>();
  memo<T>(key: string, load: () => Promise<T>): Promise<T> {
    let hit = this.#memo.get(key) as Promise<T> | undefined;
    if (!hit) {
      hit = load();
      this.#memo.set(key, hit);
    }
    return hit;
  }
}

const subjectOf = (r: HealthScoreRow): Subject => ({
  kind: r.kind,
  id: r.subjectId,
  organizationId: r.organizationId,
  domainId: r.domainId,
  name: r.name,
});

const senderOf = (r: { kind: SubjectKind; domainId: string; name: string }): PausedSender =>
  r.kind === 'domain' ? { domainId: r.domainId } : { address: r.name };

const codesOf = (findings: { code: string }[]) => findings.map((f) => f.code);

export class HealthService {
  readonly #o: HealthOptions;
  readonly #inputs: HealthInput[] = [];
  /** Trigger selectors gathered after commit, by organisation. */
  #gathered = new Map<string, SubjectSelector[]>();
  #gatherTimer: NodeJS.Timeout | null = null;

  constructor(options: HealthOptions) {
    this.#o = options;
    for (const input of options.inputs) this.register(input);
  }

  /** Adds an input (modules listed after health call this in their `create`). */
  register(input: HealthInput): void {
    if (this.#inputs.some((i) => i.name === input.name))
      throw new Error(`health input "${input.name}" is registered twice`);
    if (!(input.weight >= 0 && input.weight <= 100))
      throw new Error(`health input "${input.name}" needs a weight from 0 to 100`);
    this.#inputs.push(input);
  }

  get inputs(): readonly HealthInput[] {
    return this.#inputs;
  }

  #inputsFor(kind: SubjectKind): HealthInput[] {
    return this.#inputs.filter((i) => i.kinds.includes(kind));
  }

  // ---- subjects and triggers ------------------------------------------------------------------------

  /**
   * In every emitting transaction: new domains and mailboxes are scored, a deleted mailbox's pause goes
   * with it, and inputs' trigger events make the subjects they name due.
   */
  async onEmitted(tx: Db, records: EventRecord[]): Promise<void> {
    const now = this.#o.clock.now();
    const added: store.NewSubject[] = [];
    const marks = new Map<string, SubjectSelector[]>();
    for (const r of records) {
      const data = r.data as Record<string, string>;
      if (r.type === 'domain.created') {
        added.push({
          kind: 'domain',
          subjectId: data.domain_id,
          organizationId: r.organizationId,
          domainId: data.domain_id,
          mailboxId: null,
          name: data.name,
        });
      } else if (r.type === 'mailbox.created') {
        added.push({
          kind: 'mailbox',
          subjectId: data.mailbox_id,
          organizationId: r.organizationId,
          domainId: data.domain_id,
          mailboxId: data.mailbox_id,
          name: data.address.toLowerCase(),
        });
      } else if (r.type === 'mailbox.deleted') {
        // Its scores go with it (foreign keys), and so does its pause, so that the address is not paused
        // for whoever gets it next; mail held for it stays held, for a person to release or cancel.
        await this.#o.outbound.resumeSenderIn(
          tx,
          r.organizationId,
          { address: data.address },
          { release: false },
        );
        continue;
      }
      for (const input of this.#inputs) {
        const trigger = input.triggers?.[r.type];
        if (!trigger || input.afterCommit?.includes(r.type)) continue;
        const list = marks.get(r.organizationId) ?? [];
        list.push(...trigger({ type: r.type, organizationId: r.organizationId, data: r.data }));
        marks.set(r.organizationId, list);
      }
    }
    await store.insertSubjects(tx, added, now);
    for (const [organizationId, selectors] of marks) await store.markDue(tx, organizationId, selectors, now);
    if (added.length || marks.size) await this.#wakeSoon(tx);
  }

  /** A committed event from the bus (worker processes): after-commit triggers, gathered for a second. */
  noteCommitted(event: EventRecord): void {
    for (const input of this.#inputs) {
      if (!input.afterCommit?.includes(event.type)) continue;
      const trigger = input.triggers?.[event.type];
      if (!trigger) continue;
      const list = this.#gathered.get(event.organizationId) ?? [];
      list.push(...trigger({ type: event.type, organizationId: event.organizationId, data: event.data }));
      this.#gathered.set(event.organizationId, list);
    }
    if (this.#gathered.size && !this.#gatherTimer) {
      this.#gatherTimer = setTimeout(() => {
        this.#gatherTimer = null;
        this.flushGathered().catch((err) => this.#o.log.error({ err }, 'could not mark health subjects due'));
      }, GATHER_MS);
      this.#gatherTimer.unref();
    }
  }

  /** Marks what after-commit triggers named (one statement per organisation). */
  async flushGathered(): Promise<void> {
    if (this.#gatherTimer) clearTimeout(this.#gatherTimer);
    this.#gatherTimer = null;
    const gathered = this.#gathered;
    this.#gathered = new Map();
    if (!gathered.size) return;
    const now = this.#o.clock.now();
    await this.#o.db.transaction(async (tx) => {
      for (const [organizationId, selectors] of gathered)
        await store.markDue(tx, organizationId, dedupe(selectors), now);
      await this.#wakeSoon(tx);
    });
  }

  async #wakeSoon(tx: Db): Promise<void> {
    await this.#o.jobs.send(
      SOON_QUEUE,
      {},
      { tx, singletonKey: 'soon', startAfter: new Date(Date.now() + this.#o.dirtyDelayMs) },
    );
  }

  // ---- recomputing ----------------------------------------------------------------------------------

  /** The sweep: every due subject, a leased batch at a time; how many were computed. */
  async recomputeDue(): Promise<number> {
    await store.discoverSubjects(this.#o.db, this.#o.clock.now());
    const run = new Run();
    let computed = 0;
    for (;;) {
      const now = this.#o.clock.now();
      const rows = await store.claimDue(this.#o.db, now, new Date(now.getTime() + LEASE_MS), BATCH);
      if (!rows.length) return computed;
      try {
        await this.#compute(rows, run, now);
        computed += rows.length;
      } catch (err) {
        this.#o.log.error({ err, subjects: rows.length }, 'health computation failed');
        await store.deferSubjects(this.#o.db, rows, new Date(now.getTime() + RETRY_MS));
      }
      if (rows.length < BATCH) return computed;
    }
  }

  /** Scores, records and repairs a batch of subjects. */
  async #compute(rows: HealthScoreRow[], run: Run, now: Date): Promise<void> {
    const groups = new Map<string, HealthScoreRow[]>();
    for (const r of rows) {
      const key = `${r.organizationId}\n${r.kind}`;
      const list = groups.get(key) ?? [];
      list.push(r);
      groups.set(key, list);
    }
    const results: store.ComputedRow[] = [];
    const history: Parameters<typeof store.writeResults>[2] = [];
    const events: EventInput[] = [];
    const repairs: Planned[] = [];
    for (const group of groups.values()) {
      const { organizationId, kind } = group[0];
      const policy = await run.memo(`policy:${organizationId}`, () => this.policy(organizationId));
      const found = await this.#evaluate(group, run, now);
      for (const row of group) {
        const inputs = this.#inputsFor(kind);
        const scored = score(inputs, found.get(row.subjectId) ?? []);
        // A new subject is presumed healthy: its first score is news only when it is not.
        const previousBand = row.band ?? 'good';
        const previousFindings = row.score === null ? [] : row.findings;
        const changed =
          previousBand !== scored.band || fingerprint(previousFindings) !== fingerprint(scored.findings);
        const below = scored.score < policy.pause_below || scored.score < policy.slow_warmup_below;
        results.push({
          kind,
          subjectId: row.subjectId,
          score: scored.score,
          band: scored.band,
          findings: scored.findings,
          computedAt: now,
          changed,
          history:
            changed ||
            scored.score !== row.score ||
            !row.historyAt ||
            now.getTime() - row.historyAt.getTime() >= HISTORY_EVERY_MS,
          belowSince: below ? (row.belowSince ?? now) : null,
          marks: row.marks,
          dueAt: new Date(now.getTime() + this.#o.intervalMs),
        });
        if (results.at(-1)!.history) {
          history.push({
            id: newId(),
            kind,
            subjectId: row.subjectId,
            organizationId,
            at: now,
            score: scored.score,
            band: scored.band,
            codes: codesOf(scored.findings),
          });
        }
        if (changed) {
          const before = new Set(codesOf(previousFindings));
          const after = new Set(codesOf(scored.findings));
          events.push(
            eventOf(healthChanged, organizationId, {
              kind,
              subject_id: row.subjectId,
              domain_id: row.domainId,
              name: row.name,
              score: scored.score,
              band: scored.band,
              previous_score: row.score,
              previous_band: row.band,
              findings: [...after],
              added: [...after].filter((c) => !before.has(c)),
              removed: [...before].filter((c) => !after.has(c)),
            }),
          );
        }
        const next = results.at(-1)!;
        repairs.push({
          row: { ...row, belowSince: next.belowSince, score: next.score, findings: next.findings },
          score: scored.score,
          findings: scored.findings,
        });
      }
    }
    await this.#o.db.transaction(async (tx) => {
      await store.writeResults(tx, results, history);
      await this.#o.events.emitMany(tx, events);
    });
    for (const planned of repairs) {
      try {
        await this.#repair(planned, run);
      } catch (err) {
        this.#o.log.error({ err, subject: planned.row.subjectId }, 'health repair failed');
      }
    }
  }

  /** Every input's findings for a group (one organisation, one kind); a failed input keeps its last ones. */
  async #evaluate(group: HealthScoreRow[], run: Run, now: Date): Promise<Map<string, StoredFinding[]>> {
    const { organizationId, kind } = group[0];
    const batch: InputBatch = {
      organizationId,
      kind,
      subjects: group.map(subjectOf),
      now,
      memo: (key, load) => run.memo(key, load),
    };
    const found = new Map<string, StoredFinding[]>(group.map((r) => [r.subjectId, []]));
    await Promise.all(
      this.#inputsFor(kind).map(async (input) => {
        let answer: Map<string, Finding[]>;
        try {
          answer = await input.evaluate(batch);
        } catch (err) {
          this.#o.log.warn(
            { err, input: input.name, organizationId },
            'health input failed; its findings are kept',
          );
          for (const r of group) {
            found.get(r.subjectId)!.push(...r.findings.filter((f) => f.input === input.name));
          }
          return;
        }
        for (const r of group) {
          for (const f of answer.get(r.subjectId) ?? [])
            found.get(r.subjectId)!.push({ ...f, input: input.name });
        }
      }),
    );
    return found;
  }

  // ---- auto-repair ----------------------------------------------------------------------------------

  /**
   * What the policy asks for a freshly scored subject, done in turn, and one email about what was done.
   * Only senders are repaired: a domain that never verified sends nothing yet (its findings say what to
   * publish), and neither do its mailboxes.
   */
  async #repair(p: Planned, run: Run): Promise<void> {
    const { row } = p;
    const policy = await run.memo(`policy:${row.organizationId}`, () => this.policy(row.organizationId));
    if (!policy.enabled) return;
    const belowAny = p.score < policy.pause_below || p.score < policy.slow_warmup_below;
    const drifted =
      row.kind === 'domain' && policy.republish_dns && p.findings.some((f) => DRIFT_CODES.has(f.code));
    const resumable = policy.auto_resume && (row.pausedActionId || row.slowedActionId);
    if (!belowAny && !drifted && !resumable) return;
    const [domain] = await run.memo(`domain:${row.domainId}`, () =>
      this.#o.domains.many(row.organizationId, [row.domainId]),
    );
    if (!domain?.verifiedAt) return;
    const taken: HealthActionRow[] = [];
    try {
      await this.#repairSteps(p, policy, domain.dnsProviderAccountId, taken);
    } finally {
      await this.#notify(taken);
    }
  }

  async #repairSteps(
    p: Planned,
    policy: HealthPolicy,
    dnsProviderAccountId: string | null,
    taken: HealthActionRow[],
  ): Promise<void> {
    const { row } = p;
    const took = (a: HealthActionRow | null) => {
      if (a) taken.push(a);
      return a;
    };
    const acknowledged =
      row.acknowledgedAt !== null && row.belowSince !== null && row.acknowledgedAt >= row.belowSince;
    const worst = p.findings
      .filter((f) => f.penalty > 0)
      .slice(0, 3)
      .map((f) => f.code)
      .join(', ');
    const why = (threshold: number) =>
      `health score ${p.score} is below ${threshold}${worst ? ` (${worst})` : ''}`;
    const automatic = { id: null };

    if (
      row.kind === 'domain' &&
      policy.republish_dns &&
      dnsProviderAccountId &&
      p.findings.some((f) => DRIFT_CODES.has(f.code))
    ) {
      // Published again: the subject is recomputed in a moment on the records as they are now, and the
      // pause waits for that score (it is taken then if publishing did not help).
      if (took(await this.#republishIfDue(row, p))?.state === 'applied') return;
    }
    if (p.score < policy.pause_below && !row.pausedActionId && !acknowledged) {
      // A mailbox whose domain is paused is held by the domain's pause already.
      const domainPaused =
        row.kind === 'mailbox' &&
        (await store.subjectOf(this.#o.db, row.organizationId, 'domain', row.domainId))?.pausedActionId;
      if (!domainPaused) took(await this.#pause(row, why(policy.pause_below), automatic, p.score));
    }
    if (p.score < policy.slow_warmup_below && !row.slowedActionId && !acknowledged) {
      took(await this.#slow(row, why(policy.slow_warmup_below), automatic, p.score));
    }
    if (policy.auto_resume && p.score >= policy.resume_at) {
      for (const id of [row.pausedActionId, row.slowedActionId]) {
        if (!id) continue;
        const action = await store.actionById(this.#o.db, row.organizationId, id);
        if (action?.automatic && action.state === 'applied') {
          took(
            await this.#undo(
              action,
              automatic,
              `health score ${p.score} is back at ${policy.resume_at} or above`,
              false,
            ),
          );
        }
      }
    }
  }

  async #republishIfDue(row: HealthScoreRow, p: Planned): Promise<HealthActionRow | null> {
    const now = this.#o.clock.now();
    const recent = await store.lastActionSince(
      this.#o.db,
      'domain',
      row.subjectId,
      'dns_republish',
      new Date(now.getTime() - REPUBLISH_COOLDOWN_MS),
    );
    if (recent) return null;
    const drifted = p.findings.filter((f) => DRIFT_CODES.has(f.code)).map((f) => f.code);
    return this.#republish(row, `DNS records drifted: ${drifted.join(', ')}`, { id: null }, p.score);
  }

  // ---- actions --------------------------------------------------------------------------------------

  async #record(
    tx: Db,
    row: Pick<HealthScoreRow, 'organizationId' | 'kind' | 'subjectId' | 'domainId' | 'name'>,
    a: {
      id?: string;
      action: ActionKind;
      actor: Actor;
      reason: string;
      score: number | null;
      details: Record<string, unknown>;
      state: 'applied' | 'failed';
      error?: string | null;
      detail: string;
    },
  ): Promise<HealthActionRow> {
    const action = await store.insertAction(tx, {
      id: a.id ?? newId(),
      organizationId: row.organizationId,
      kind: row.kind,
      subjectId: row.subjectId,
      domainId: row.domainId,
      name: row.name,
      action: a.action,
      automatic: a.actor.id === null,
      reason: a.reason,
      score: a.score,
      details: a.details,
      state: a.state,
      error: a.error ?? null,
      actorId: a.actor.id,
      createdAt: this.#o.clock.now(),
    });
    await this.#o.events.emit(tx, healthRepair, row.organizationId, repairData(action, a.detail));
    return action;
  }

  /** Pauses the sender: its queued mail is held now, new mail when it is queued; released on resume. */
  async #pause(row: HealthScoreRow, reason: string, actor: Actor, score: number | null) {
    const action = await this.#o.db.transaction(async (tx) => {
      const locked = await store.lockSubject(tx, row.kind, row.subjectId);
      if (!locked) throw notFound(row.kind === 'domain' ? 'Domain' : 'Mailbox');
      if (locked.pausedActionId) {
        if (actor.id === null) return null;
        throw conflict(`${row.name} is paused already (action ${locked.pausedActionId})`);
      }
      const id = newId();
      const { held } = await this.#o.outbound.pauseSenderIn(tx, row.organizationId, senderOf(row), reason);
      const detail = `${row.kind === 'domain' ? 'all mail of' : 'mail from'} ${row.name} is held; ${held} queued recipient${held === 1 ? '' : 's'} held now`;
      const recorded = await this.#record(tx, row, {
        id,
        action: 'pause',
        actor,
        reason,
        score,
        details: {
          held,
          sender: row.kind === 'domain' ? { domain_id: row.domainId } : { address: row.name },
        },
        state: 'applied',
        detail,
      });
      await store.updateSubject(tx, row.kind, row.subjectId, { pausedActionId: id });
      return recorded;
    });
    if (!action) return null;
    this.#o.outbound.forgetPauses();
    return action;
  }

  async #slow(row: HealthScoreRow, reason: string, actor: Actor, score: number | null) {
    const action = await this.#o.db.transaction(async (tx) => {
      const locked = await store.lockSubject(tx, row.kind, row.subjectId);
      if (!locked || locked.slowedActionId) return null;
      const id = newId();
      const recorded = await this.#record(tx, row, {
        id,
        action: 'slow_warmup',
        actor,
        reason,
        score,
        details: {},
        state: 'applied',
        detail: `warmup of ${row.name} runs at half its ramp`,
      });
      await store.updateSubject(tx, row.kind, row.subjectId, { slowedActionId: id });
      return recorded;
    });
    return action;
  }

  /** Publishes the domain's records again through its DNS provider account, keeping what it wrote. */
  async #republish(row: HealthScoreRow, reason: string, actor: Actor, score: number | null) {
    let outcome: Awaited<ReturnType<DomainsService['republishDns']>> | null = null;
    let error: string | null = null;
    try {
      outcome = await this.#o.domains.republishDns(row.organizationId, row.subjectId);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      error = err.message;
    }
    const written = outcome?.changes.length ?? 0;
    const action = await this.#o.db.transaction((tx) =>
      this.#record(tx, row, {
        action: 'dns_republish',
        actor,
        reason,
        score,
        details: outcome
          ? {
              provider_account_id: outcome.provider_account_id,
              zone: outcome.zone,
              results: outcome.results,
              changes: outcome.changes,
            }
          : {},
        state: outcome ? 'applied' : 'failed',
        error,
        detail: outcome
          ? `${written} record${written === 1 ? '' : 's'} written in zone ${outcome.zone}`
          : `could not publish: ${error}`,
      }),
    );
    await this.markDue([{ kind: 'domain', id: row.subjectId }], row.organizationId);
    return action;
  }

  /** Undoes an action (a pause releases the held mail); `acknowledge`: the policy does not repeat it. */
  async #undo(action: HealthActionRow, actor: Actor, reason: string, acknowledge: boolean) {
    const org = action.organizationId;
    // Outside the transaction first: what an action did at the DNS provider or to DKIM keys.
    let extra: Record<string, unknown> = {};
    if (action.state !== 'applied') throw conflict(`the action is ${action.state}: there is nothing to undo`);
    if (action.action === 'dkim_rotate') {
      const selector = String(action.details.selector);
      const undone = await this.#o.domains.undoDkimRotation(org, action.subjectId, selector);
      extra = { restored_selector: undone.restored };
    }
    if (action.action === 'dns_republish' || action.action === 'dkim_rotate') {
      const changes = (action.details.changes ?? []) as DnsChange[];
      const account = action.details.provider_account_id as string | undefined;
      if (changes.length && account) {
        extra = { ...extra, ...(await this.#o.domains.revertDns(org, action.subjectId, account, changes)) };
      }
    }
    const { undone, released } = await this.#o.db.transaction(async (tx) => {
      const locked = await store.lockAction(tx, org, action.id);
      if (locked?.state !== 'applied')
        throw conflict(`the action is ${locked?.state ?? 'gone'}: there is nothing to undo`);
      const row = await store.lockSubject(tx, action.kind, action.subjectId);
      let released = 0;
      if (action.action === 'pause') {
        released = (await this.#o.outbound.resumeSenderIn(tx, org, senderOf(action))).released;
        extra = { ...extra, released };
      }
      const now = this.#o.clock.now();
      const undone = await store.updateAction(tx, action.id, {
        state: 'undone',
        undoneAt: now,
        undoneBy: actor.id,
        undoReason: reason,
        details: { ...action.details, undo: extra },
      });
      if (row) {
        const changes: Partial<HealthScoreRow> = {};
        if (row.pausedActionId === action.id) changes.pausedActionId = null;
        if (row.slowedActionId === action.id) changes.slowedActionId = null;
        if (acknowledge) changes.acknowledgedAt = now;
        if (Object.keys(changes).length)
          await store.updateSubject(tx, action.kind, action.subjectId, changes);
      }
      await this.#o.events.emit(tx, healthRepair, org, repairData(undone, `undone: ${reason}`));
      return { undone, released };
    });
    if (action.action === 'pause') {
      this.#o.outbound.forgetPauses();
      if (released) this.#o.outbound.notifyQueued();
    }
    if (action.action === 'dns_republish' || action.action === 'dkim_rotate') {
      await this.#o.domains.recheck(org, action.subjectId).catch(() => {});
    }
    await this.markDue([{ kind: action.kind, id: action.subjectId }], org);
    return undone;
  }

  /** One email to the organisation's owners and admins about what the policy just did for a subject. */
  async #notify(taken: HealthActionRow[]): Promise<void> {
    const automatic = taken.filter((a) => a.automatic);
    if (!automatic.length) return;
    const first = automatic[0];
    const policy = await this.policy(first.organizationId);
    if (!policy.notify_email) return;
    const what: Record<ActionKind, string> = {
      pause: 'sending paused',
      slow_warmup: 'warmup slowed',
      dns_republish: 'DNS records published again',
      dkim_rotate: 'DKIM key rotated',
    };
    const label = (a: HealthActionRow) =>
      a.state === 'undone'
        ? `${what[a.action]}: undone`
        : a.state === 'failed'
          ? `${what[a.action]}: failed`
          : what[a.action];
    const subject = `[Mailroom] ${first.name}: ${automatic.map(label).join(', ')}`;
    const text = [
      `Mailroom's health checks acted on ${first.kind} ${first.name}${first.score !== null ? ` (health score ${first.score})` : ''}.`,
      '',
      ...automatic.flatMap((a) => [
        `- ${label(a)}`,
        `  Why: ${a.undoReason ?? a.reason}`,
        ...(a.error ? [`  Error: ${a.error}`] : []),
        ...(a.state === 'applied' ? [`  Undo: POST /v1/health/actions/${a.id}/undo`] : []),
      ]),
      '',
      `Findings: GET /v1/health/${first.kind === 'domain' ? 'domains' : 'mailboxes'}/${first.subjectId}`,
      ...(automatic.some((a) => a.action === 'pause' && a.state === 'applied')
        ? ['Paused mail is held, not dropped: it is sent when the sender is resumed.']
        : []),
    ].join('\n');
    try {
      for (const to of await this.#o.adminEmails(first.organizationId))
        await this.#o.mailer.send({ to, subject, text });
    } catch (err) {
      this.#o.log.error({ err, action: first.id }, 'could not send a health notification');
    }
  }

  // ---- what the API offers ---------------------------------------------------------------------------

  /** The subject's row, registered now when the domain or mailbox exists but was never scored. */
  async #subject(organizationId: string, kind: SubjectKind, id: string): Promise<HealthScoreRow> {
    const row = await store.subjectOf(this.#o.db, organizationId, kind, id);
    if (row) return row;
    let subject: store.NewSubject;
    if (kind === 'domain') {
      const [domain] = await this.#o.domains.many(organizationId, [id]);
      if (!domain) throw notFound('Domain');
      subject = { kind, subjectId: id, organizationId, domainId: id, mailboxId: null, name: domain.name };
    } else {
      const mailbox = await this.#o.mailboxes.get(organizationId, id);
      subject = {
        kind,
        subjectId: id,
        organizationId,
        domainId: mailbox.domainId,
        mailboxId: id,
        name: mailbox.address.toLowerCase(),
      };
    }
    await store.insertSubjects(this.#o.db, [subject], this.#o.clock.now());
    const created = await store.subjectOf(this.#o.db, organizationId, kind, id);
    if (!created) throw notFound(kind === 'domain' ? 'Domain' : 'Mailbox');
    return created;
  }

  async list(
    organizationId: string,
    kind: SubjectKind,
    filter: store.ScoreFilter,
    sort: store.ScoreSort,
    page: PageRequest,
  ) {
    const { rows, total } = await store.listScores(this.#o.db, organizationId, kind, filter, sort, page);
    return toPage(rows, total, page);
  }

  async detail(
    organizationId: string,
    kind: SubjectKind,
    id: string,
    historyDays: number,
  ): Promise<SubjectDetail> {
    const row = await this.#subject(organizationId, kind, id);
    const since = new Date(this.#o.clock.now().getTime() - historyDays * 86_400_000);
    const [history, domain] = await Promise.all([
      store.historyOf(this.#o.db, kind, id, since),
      kind === 'mailbox' ? store.subjectOf(this.#o.db, organizationId, 'domain', row.domainId) : null,
    ]);
    return {
      row,
      inputs: score(this.#inputsFor(kind), row.findings).inputs,
      history: history.map((h) => ({ at: h.at, score: h.score, band: h.band, codes: h.codes })),
      domain,
    };
  }

  /**
   * Recomputes one subject now (a domain's DNS is checked again first), repairs included. A sweep that
   * is computing it is waited for (up to a lease's length), so the two never write over each other.
   */
  async check(organizationId: string, kind: SubjectKind, id: string, historyDays: number) {
    await this.#subject(organizationId, kind, id);
    if (kind === 'domain') await this.#o.domains.recheck(organizationId, id);
    const waitUntil = Date.now() + LEASE_MS;
    for (;;) {
      const now = this.#o.clock.now();
      const row = await store.claimOne(this.#o.db, kind, id, now, new Date(now.getTime() + LEASE_MS));
      if (row) {
        try {
          await this.#compute([row], new Run(), now);
        } catch (err) {
          await store.deferSubjects(this.#o.db, [row], now);
          throw err;
        }
        break;
      }
      if (Date.now() > waitUntil) throw new AppError(503, 'busy', 'The subject is being computed; try again');
      await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
    }
    return this.detail(organizationId, kind, id, historyDays);
  }

  /** Pauses a sender by hand (its mail is held until it is resumed). */
  async pause(organizationId: string, kind: SubjectKind, id: string, actor: Actor, reason?: string) {
    const row = await this.#subject(organizationId, kind, id);
    const action = await this.#pause(row, reason?.trim() || 'paused by hand', actor, row.score);
    return action!;
  }

  /** Resumes a paused sender: its pause is undone and its held mail released. */
  async resume(organizationId: string, kind: SubjectKind, id: string, actor: Actor) {
    const row = await this.#subject(organizationId, kind, id);
    if (!row.pausedActionId) throw conflict(`${row.name} is not paused`);
    const action = await store.actionById(this.#o.db, organizationId, row.pausedActionId);
    if (!action) throw conflict(`${row.name} is not paused`);
    return this.#undo(action, actor, 'resumed by hand', true);
  }

  /** Rotates the domain's DKIM key (domains' rotation) and publishes the new key through its DNS provider. */
  async rotateDkim(organizationId: string, id: string, choice: DkimChoice, actor: Actor, reason?: string) {
    const row = await this.#subject(organizationId, 'domain', id);
    const key = await this.#o.domains.rotateDkim(organizationId, id, choice);
    const domain = await this.#o.domains.get(organizationId, id);
    let published: Awaited<ReturnType<DomainsService['republishDns']>> | null = null;
    let publishError: string | null = null;
    if (domain.dnsProviderAccountId) {
      try {
        published = await this.#o.domains.republishDns(organizationId, id);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        publishError = err.message;
      }
    }
    const action = await this.#o.db.transaction((tx) =>
      this.#record(tx, row, {
        action: 'dkim_rotate',
        actor,
        reason: reason?.trim() || 'rotation asked for',
        score: row.score,
        details: {
          selector: key.selector,
          algorithm: key.algorithm,
          ...(published
            ? {
                provider_account_id: published.provider_account_id,
                zone: published.zone,
                results: published.results,
                changes: published.changes,
              }
            : {}),
          ...(publishError ? { publish_error: publishError } : {}),
        },
        state: 'applied',
        detail: published
          ? `new key ${key.selector} published in zone ${published.zone}; it signs once a check sees it`
          : `new key ${key.selector} created; publish its record (GET /v1/domains/${id}/dns-records), it signs once a check sees it`,
      }),
    );
    await this.markDue([{ kind: 'domain', id }], organizationId);
    return action;
  }

  async policy(organizationId: string) {
    return policyOfRow(await store.policyOf(this.#o.db, organizationId));
  }

  async setPolicy(organizationId: string, input: HealthPolicy, actor: Actor) {
    if (input.resume_at <= input.pause_below) {
      throw validationFailed(
        'resume_at',
        'must be above pause_below, or a resumed sender would be paused again',
      );
    }
    const row = await store.upsertPolicy(this.#o.db, {
      organizationId,
      enabled: input.enabled,
      pauseBelow: input.pause_below,
      slowWarmupBelow: input.slow_warmup_below,
      autoResume: input.auto_resume,
      resumeAt: input.resume_at,
      republishDns: input.republish_dns,
      notifyEmail: input.notify_email,
      updatedAt: new Date(),
      updatedBy: actor.id,
    });
    // Every subject is looked at again under the new policy.
    await this.markDue(
      [
        { kind: 'domain', organization: true },
        { kind: 'mailbox', organization: true },
      ],
      organizationId,
    );
    return policyOfRow(row);
  }

  async actions(organizationId: string, filter: store.ActionFilter, page: PageRequest) {
    const { rows, total } = await store.listActions(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  async action(organizationId: string, id: string): Promise<HealthActionRow> {
    const row = await store.actionById(this.#o.db, organizationId, id);
    if (!row) throw notFound('Health action');
    return row;
  }

  /** Undoes an action; the policy does not take it again until the subject recovers and falls again. */
  async undo(organizationId: string, id: string, actor: Actor, reason?: string) {
    const action = await this.action(organizationId, id);
    return this.#undo(action, actor, reason?.trim() || 'undone by hand', true);
  }

  /** Makes subjects due now and wakes a sweep (a change they depend on happened). */
  async markDue(selectors: SubjectSelector[], organizationId: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      await store.markDue(tx, organizationId, selectors, this.#o.clock.now());
      await this.#wakeSoon(tx);
    });
  }

  // ---- what other modules read ------------------------------------------------------------------------

  /**
   * Whether a mailbox (or its domain) or a domain is paused, and whether its warmup is slowed: what
   * the warmup module reads before sending.
   */
  async repairState(
    organizationId: string,
    subject: { mailboxId: string } | { domainId: string },
  ): Promise<RepairState> {
    const rows = (await store.repairRows(this.#o.db, organizationId, subject)).sort((a, b) =>
      a.kind === b.kind ? 0 : a.kind === 'domain' ? -1 : 1,
    );
    const state: RepairState = { paused: false, slowed: false, actions: [] };
    const ids = rows.flatMap((r) => [r.pausedActionId, r.slowedActionId]).filter((x): x is string => !!x);
    const actions = await Promise.all(ids.map((id) => store.actionById(this.#o.db, organizationId, id)));
    for (const a of actions) {
      if (!a || (a.action !== 'pause' && a.action !== 'slow_warmup')) continue;
      if (a.action === 'pause') state.paused = true;
      else state.slowed = true;
      state.actions.push({ id: a.id, action: a.action, kind: a.kind, reason: a.reason });
    }
    return state;
  }

  async isPaused(organizationId: string, subject: { mailboxId: string } | { domainId: string }) {
    const rows = await store.repairRows(this.#o.db, organizationId, subject);
    return rows.some((r) => r.pausedActionId !== null);
  }

  /** Drops history older than MAILROOM_HEALTH_HISTORY; how many points. */
  async pruneHistory(): Promise<number> {
    const before = new Date(this.#o.clock.now().getTime() - this.#o.historyRetentionMs);
    let total = 0;
    for (;;) {
      const n = await store.pruneHistory(this.#o.db, before, 5_000);
      total += n;
      if (n < 5_000) return total;
    }
  }

  /** Stops gathering (shutdown) after marking what was gathered. */
  async stop(): Promise<void> {
    await this.flushGathered().catch((err) =>
      this.#o.log.error({ err }, 'could not mark health subjects due'),
    );
  }
}

function repairData(a: HealthActionRow, detail: string | null) {
  return {
    kind: a.kind,
    subject_id: a.subjectId,
    domain_id: a.domainId,
    name: a.name,
    action_id: a.id,
    action: a.action,
    state: a.state,
    automatic: a.automatic,
    reason: a.reason,
    score: a.score,
    detail,
  };
}

function dedupe(selectors: SubjectSelector[]): SubjectSelector[] {
  return [...new Map(selectors.map((s) => [JSON.stringify(s), s])).values()];
}
