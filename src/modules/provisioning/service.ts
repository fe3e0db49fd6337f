// Provisioning: from a list of domain names to working inboxes, in one tracked job. Each domain goes
// through named steps, each a small function with a guard (does it apply to this request?):
//
//   register     buy the name through the registrar account (when asked)
//   domain       add it to the organisation (or take the one already there)
//   zone         find or create its zone at the DNS provider, and learn the zone's name servers
//   nameservers  point the registration at those name servers (when registered here)
//   dns          publish every record the domain needs through the DNS provider
//   verify       check the records until they resolve, with backoff while DNS propagates; past the
//                timeout the domain is left "stuck" with the per-record diagnosis (no failure loop)
//   inboxes      generate its inboxes (planned once, made a chunk per transaction)
//
// A domain's step and what the steps learned are written when a step ends, in one transaction with its
// `provision.step_completed` event, so a run resumed after a crash continues from the step it was in.
// Steps that call outside services are idempotent where the service allows: a zone or a domain that
// exists is taken, records already published are left as they are, and a registration that went
// through before a crash is not repeated (see `register`). Warmup enrolment joins once warmup lands.
import type { Db } from '../../core/db.ts';
import { AppError, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { forEachLimit } from '../../core/concurrency.ts';
import type { DomainsService } from '../domains/service.ts';
import { eventOf, type EventsService } from '../events/service.ts';
import { type GenerateRequest, type InboxesService, inboxOptions } from '../inboxes/service.ts';
import type { JobRow, RunningJob, TrackedJobsService } from '../jobs/service.ts';
import type { MailboxesService } from '../mailboxes/service.ts';
import type { ProviderAccountsService } from '../provider-accounts/service.ts';
import type { RegistrantContact } from '../../providers/registrar/types.ts';
import { provisionCompleted, provisionFailed, provisionStepCompleted } from './events.ts';
import * as store from './store.ts';
import type { DomainStepState, ProvisionDomainRow, ProvisionRow, StepTiming } from './tables.ts';

export const PROVISION_KIND = 'provision';
export const MAX_DOMAINS = 100;
const STEPS = ['register', 'domain', 'zone', 'nameservers', 'dns', 'verify', 'inboxes', 'done'] as const;
export type Step = (typeof STEPS)[number];
/** Domains worked on at once within one provisioning. */
const DOMAIN_CONCURRENCY = 4;
/** Inboxes made per transaction. */
const INBOX_CHUNK = 100;
/** A provider that is rate limiting or unreachable is tried again this many times before the step fails. */
const TRANSIENT_RETRIES = 5;
const TRANSIENT_CODES = new Set(['provider_rate_limited', 'provider_unavailable']);

export interface ProvisionRequest {
  domains: string[];
  register?: {
    provider_account_id: string;
    years?: number | null;
    contact: RegistrantContact;
  } | null;
  dns_provider_account_id?: string | null;
  inboxes?: (Omit<GenerateRequest, 'domains'> & { count_per_domain: number }) | null;
  verify_timeout_seconds?: number | null;
}

/** What the steps learned about a domain (the row's `detail`). */
export interface DomainDetail {
  registration?: { order_id: string; domain_id: string; charged_amount: string };
  zone?: { name: string; nameservers: string[]; created: boolean };
  nameservers_set?: string[];
  /** What publishing did, per action (`skipped`: a record there that is not ours, left alone). */
  dns?: { created: number; updated: number; unchanged: number; skipped: number; errors: number };
  verification?: {
    status: string;
    attempts: number;
    waiting_since: string;
    next_check_at: string | null;
    diagnosis: { purpose: string; status: string; diagnosis: string }[];
  };
  inboxes?: { planned: [string, string, string][]; done: number };
  retries?: number;
}

type Outcome =
  | { kind: 'advance'; detail: DomainDetail; domainId?: string }
  | { kind: 'wait'; ms: number; detail: DomainDetail }
  | { kind: 'stuck'; error: string; detail: DomainDetail }
  | { kind: 'fail'; error: string };

export interface ProvisioningOptions {
  db: Db;
  events: EventsService;
  domains: DomainsService;
  mailboxes: MailboxesService;
  inboxes: InboxesService;
  providers: ProviderAccountsService;
  jobs: TrackedJobsService;
  /** Waits between verification attempts; the last repeats. */
  verifyBackoffMs: number[];
  /** How long a domain may wait for its DNS before it is left stuck. */
  verifyTimeoutMs: number;
}

export interface ProvisionView {
  job: JobRow;
  provision: ProvisionRow;
  domains: ProvisionDomainRow[];
}

export class ProvisioningService {
  readonly #o: ProvisioningOptions;

  constructor(options: ProvisioningOptions) {
    this.#o = options;
    options.jobs.register<{ provision_id: string }>(PROVISION_KIND, { run: (job) => this.#run(job) });
  }

  // ---- starting and reading -----------------------------------------------------------------------

  /** Checks the request, writes the provisioning with its job, and starts it. */
  async start(
    organizationId: string,
    request: ProvisionRequest,
    options: { idempotencyKey?: string; createdBy: string | null },
  ): Promise<{ job: JobRow; replayed: boolean }> {
    const { idempotency, earlier } = await this.#o.jobs.idempotencyOf(
      organizationId,
      PROVISION_KIND,
      options.idempotencyKey,
      request,
    );
    if (earlier) return { job: earlier, replayed: true };
    const names = await this.#check(organizationId, request);
    return this.#o.db.transaction(async (tx) => {
      const id = newId();
      const created = await this.#o.jobs.create(
        organizationId,
        {
          kind: PROVISION_KIND,
          input: { provision_id: id },
          total: names.length,
          createdBy: options.createdBy,
          idempotency,
          id,
        },
        tx,
      );
      await store.insertProvision(tx, { id, organizationId, input: request });
      await store.insertDomains(
        tx,
        names.map((name, position) => ({
          id: newId(),
          provisionId: id,
          organizationId,
          position,
          name,
          step: firstStep(request),
          state: 'pending' as const,
        })),
      );
      return created;
    });
  }

  /** 422 for what cannot work, before anything is bought or made; the normalised names. */
  async #check(organizationId: string, request: ProvisionRequest): Promise<string[]> {
    const names = request.domains.map((d, i) => this.#o.domains.normalisedName(d, `domains.${i}`));
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate) throw validationFailed('domains', `${duplicate} is named twice`);
    if (request.register)
      await this.#o.providers.registrar(organizationId, request.register.provider_account_id);
    if (request.dns_provider_account_id)
      await this.#o.providers.dnsProvider(organizationId, request.dns_provider_account_id);
    if (request.inboxes) {
      await this.#o.inboxes.naming(request.inboxes);
      await this.#o.mailboxes.checkRoomFor(organizationId, request.inboxes.count_per_domain * names.length);
    }
    return names;
  }

  async get(organizationId: string, id: string): Promise<ProvisionView> {
    const job = await this.#o.jobs.get(organizationId, id);
    const provision = await store.provisionById(this.#o.db, organizationId, id);
    if (!provision || job.kind !== PROVISION_KIND) throw notFound('Provisioning');
    return { job, provision, domains: await store.domainsOf(this.#o.db, id) };
  }

  // ---- running --------------------------------------------------------------------------------------

  async #run(job: RunningJob<{ provision_id: string }>): Promise<Record<string, unknown>> {
    const id = job.input.provision_id;
    const provision = await store.provisionById(this.#o.db, job.organizationId, id);
    if (!provision) throw new Error(`provisioning ${id} is gone`);
    const request = provision.input as ProvisionRequest;
    const domains = await store.domainsOf(this.#o.db, id);
    await forEachLimit(domains, DOMAIN_CONCURRENCY, (row) => this.#drive(job, request, row));
    if (job.cancelRequested()) return { provision_id: id, cancelled: true };
    const ended = await store.domainsOf(this.#o.db, id);
    await this.#announce(job, id, ended);
    const unfinished = ended.filter((d) => d.state !== 'done');
    if (unfinished.length)
      throw new ProvisionIncomplete(
        `${unfinished.length} of ${ended.length} domains did not finish: ${unfinished
          .map((d) => `${d.name} ${d.state} at ${d.step}${d.error ? ` (${d.error})` : ''}`)
          .join('; ')}`,
      );
    return { provision_id: id, links: { self: `/v1/provision/${id}` } };
  }

  /** One domain, step after step, until it is done, stuck or failed (or the job is cancelled). */
  async #drive(
    job: RunningJob<unknown>,
    request: ProvisionRequest,
    start: ProvisionDomainRow,
  ): Promise<void> {
    let row = start;
    while (!isTerminal(row.state) && !job.cancelRequested()) {
      const step = row.step as Step;
      const began = new Date();
      const detail = row.detail as DomainDetail;
      let outcome: Outcome;
      try {
        outcome = await this.#steps[step as Exclude<Step, 'done'>](job, request, row, detail);
      } catch (err) {
        outcome = this.#failure(err, detail);
      }
      row = await this.#record(job, request, row, step, began, outcome);
      if (outcome.kind === 'wait') await sleepUnlessCancelled(outcome.ms, job);
    }
  }

  /** A step's exception: a provider that is busy or away is tried again later; anything else fails. */
  #failure(err: unknown, detail: DomainDetail): Outcome {
    const message = err instanceof Error ? err.message : String(err);
    if (
      err instanceof AppError &&
      TRANSIENT_CODES.has(err.code) &&
      (detail.retries ?? 0) < TRANSIENT_RETRIES
    ) {
      const retries = (detail.retries ?? 0) + 1;
      return { kind: 'wait', ms: this.#backoff(retries), detail: { ...detail, retries } };
    }
    return { kind: 'fail', error: message };
  }

  /** Writes the outcome of a step, with its event and the job's progress, in one transaction. */
  async #record(
    job: RunningJob<unknown>,
    request: ProvisionRequest,
    row: ProvisionDomainRow,
    step: Step,
    began: Date,
    outcome: Outcome,
  ): Promise<ProvisionDomainRow> {
    return this.#o.db.transaction(async (tx) => {
      const timings = withTiming(row.timings, step, began, outcome.kind === 'advance');
      if (outcome.kind === 'advance') {
        const next = nextStep(step, request);
        const updated = await store.updateDomain(tx, row.id, {
          step: next,
          state: next === 'done' ? 'done' : 'running',
          domainId: outcome.domainId ?? row.domainId,
          detail: { ...outcome.detail, retries: 0 },
          timings,
          error: null,
        });
        await this.#o.events.emit(tx, provisionStepCompleted, job.organizationId, {
          provision_id: row.provisionId,
          domain: row.name,
          domain_id: updated.domainId,
          step,
          next_step: next,
        });
        await job.progress(tx, next === 'done' ? 1 : 0);
        return updated;
      }
      if (outcome.kind === 'wait') {
        const updated = await store.updateDomain(tx, row.id, {
          state: 'waiting',
          detail: outcome.detail,
          timings,
        });
        await job.progress(tx, 0);
        return updated;
      }
      const state: DomainStepState = outcome.kind === 'stuck' ? 'stuck' : 'failed';
      const updated = await store.updateDomain(tx, row.id, {
        state,
        error: outcome.error,
        timings,
        ...(outcome.kind === 'stuck' ? { detail: outcome.detail } : {}),
      });
      await job.progress(tx, 1, [{ item: row.name, message: `${step}: ${outcome.error}` }]);
      return updated;
    });
  }

  async #announce(job: RunningJob<unknown>, id: string, domains: ProvisionDomainRow[]): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      await job.progress(tx, 0);
      if (!(await store.markAnnounced(tx, id))) return;
      const unfinished = domains.filter((d) => d.state !== 'done');
      await this.#o.events.emitMany(tx, [
        unfinished.length
          ? eventOf(provisionFailed, job.organizationId, {
              provision_id: id,
              domains: unfinished.map((d) => ({
                name: d.name,
                state: d.state,
                step: d.step,
                error: d.error,
              })),
            })
          : eventOf(provisionCompleted, job.organizationId, {
              provision_id: id,
              domains: domains.map((d) => ({
                name: d.name,
                domain_id: d.domainId,
                inboxes: (d.detail as DomainDetail).inboxes?.done ?? 0,
              })),
            }),
      ]);
    });
  }

  #backoff(attempt: number): number {
    const schedule = this.#o.verifyBackoffMs;
    return schedule[Math.min(attempt, schedule.length) - 1];
  }

  // ---- the steps -------------------------------------------------------------------------------------

  readonly #steps: Record<
    Exclude<Step, 'done'>,
    (
      job: RunningJob<unknown>,
      request: ProvisionRequest,
      row: ProvisionDomainRow,
      detail: DomainDetail,
    ) => Promise<Outcome>
  > = {
    /**
     * Buys the name. A registration that went through before a crash is not bought again: the name is
     * then no longer available, and the step fails with the registrar's answer; the nameservers step
     * would fail too for a name this account does not hold, so nothing is taken that is not ours.
     */
    register: async (job, request, row, detail) => {
      const register = request.register!;
      const registration = await this.#o.domains.register(job.organizationId, {
        name: row.name,
        provider_account_id: register.provider_account_id,
        years: register.years ?? 1,
        contact: register.contact,
      });
      return {
        kind: 'advance',
        detail: {
          ...detail,
          registration: {
            order_id: registration.order_id,
            domain_id: registration.domain_id,
            charged_amount: registration.charged_amount,
          },
        },
      };
    },

    /** Adds the domain to the organisation, or takes the one of that name it has. */
    domain: async (job, request, row, detail) => {
      const existing = await this.#o.domains.byName(job.organizationId, row.name);
      const domain =
        existing ??
        (await this.#o.domains.create(job.organizationId, {
          name: row.name,
          dns_provider_account_id: request.dns_provider_account_id ?? undefined,
        }));
      return { kind: 'advance', detail, domainId: domain.id };
    },

    zone: async (job, request, row, detail) => {
      const zone = await this.#o.domains.ensureZone(
        job.organizationId,
        row.domainId!,
        request.dns_provider_account_id ?? undefined,
      );
      return {
        kind: 'advance',
        detail: {
          ...detail,
          zone: { name: zone.zone, nameservers: zone.nameservers, created: zone.created },
        },
      };
    },

    nameservers: async (job, request, row, detail) => {
      const nameservers = detail.zone!.nameservers;
      await this.#o.domains.setNameservers(
        job.organizationId,
        row.domainId!,
        request.register!.provider_account_id,
        nameservers,
      );
      return { kind: 'advance', detail: { ...detail, nameservers_set: nameservers } };
    },

    dns: async (job, request, row, detail) => {
      const applied = await this.#o.domains.applyDns(
        job.organizationId,
        row.domainId!,
        request.dns_provider_account_id ?? undefined,
      );
      const count = (action: string) => applied.results.filter((r) => r.action === action).length;
      return {
        kind: 'advance',
        detail: {
          ...detail,
          dns: {
            created: count('created'),
            updated: count('updated'),
            unchanged: count('unchanged'),
            skipped: count('skipped'),
            errors: count('error'),
          },
        },
      };
    },

    /** Verified: on. Not yet: wait with backoff; past the timeout: stuck, with each record's diagnosis. */
    verify: async (job, request, row, detail) => {
      const verification = await this.#o.domains.verify(job.organizationId, row.domainId!);
      const now = new Date();
      const attempts = (detail.verification?.attempts ?? 0) + 1;
      const waitingSince = detail.verification?.waiting_since ?? now.toISOString();
      const checked = {
        status: verification.domain.status,
        attempts,
        waiting_since: waitingSince,
        next_check_at: null as string | null,
        diagnosis: verification.records
          .filter((r) => r.required && r.status !== 'verified')
          .map((r) => ({ purpose: r.purpose, status: r.status, diagnosis: r.diagnosis })),
      };
      if (verification.domain.status === 'verified')
        return { kind: 'advance', detail: { ...detail, verification: checked } };
      const timeoutMs = (request.verify_timeout_seconds ?? this.#o.verifyTimeoutMs / 1000) * 1000;
      const waited = now.getTime() - Date.parse(waitingSince);
      if (waited >= timeoutMs)
        return {
          kind: 'stuck',
          error: `DNS did not verify within ${Math.round(timeoutMs / 1000)} s: ${checked.diagnosis
            .map((d) => `${d.purpose}: ${d.diagnosis}`)
            .join('; ')}`,
          detail: { ...detail, verification: checked },
        };
      const ms = Math.min(this.#backoff(attempts), timeoutMs - waited);
      checked.next_check_at = new Date(now.getTime() + ms).toISOString();
      return { kind: 'wait', ms, detail: { ...detail, verification: checked } };
    },

    /** Plans the domain's inboxes once (kept in the row), then makes them a chunk per transaction. */
    inboxes: async (job, request, row, detail) => {
      const wanted = request.inboxes!;
      let planned = detail.inboxes;
      if (!planned) {
        const naming = await this.#o.inboxes.naming(wanted);
        planned = {
          planned: await this.#o.inboxes.planDomain(
            job.organizationId,
            row.domainId!,
            wanted.count_per_domain,
            naming,
          ),
          done: 0,
        };
        await this.#o.db.transaction(async (tx) => {
          await store.updateDomain(tx, row.id, { detail: { ...detail, inboxes: planned } });
          await job.progress(tx, 0);
        });
      }
      const domain = { id: row.domainId!, name: row.name };
      const options = inboxOptions(wanted);
      for (let at = planned.done; at < planned.planned.length; at += INBOX_CHUNK) {
        if (job.cancelRequested())
          return { kind: 'wait', ms: 0, detail: { ...detail, inboxes: { ...planned, done: at } } };
        const chunk = planned.planned.slice(at, at + INBOX_CHUNK);
        await this.#o.inboxes.createPlanned(
          job.organizationId,
          domain,
          chunk,
          options,
          async (tx, errors) => {
            await store.addInboxesDone(tx, row.id, chunk.length);
            await job.progress(
              tx,
              0,
              errors.map((e) => ({ ...e, item: `${row.name}: ${e.item}` })),
            );
          },
        );
      }
      return {
        kind: 'advance',
        detail: { ...detail, inboxes: { ...planned, done: planned.planned.length } },
      };
    },
  };
}

class ProvisionIncomplete extends Error {}

function isTerminal(state: DomainStepState): boolean {
  return state === 'done' || state === 'stuck' || state === 'failed';
}

/** Whether a step applies to this request. */
function applies(step: Step, request: ProvisionRequest): boolean {
  switch (step) {
    case 'register':
      return Boolean(request.register);
    case 'zone':
    case 'dns':
      return Boolean(request.dns_provider_account_id);
    case 'nameservers':
      return Boolean(request.register && request.dns_provider_account_id);
    case 'inboxes':
      return Boolean(request.inboxes);
    default:
      return true;
  }
}

function firstStep(request: ProvisionRequest): Step {
  return STEPS.find((s) => applies(s, request))!;
}

function nextStep(step: Step, request: ProvisionRequest): Step {
  return STEPS.slice(STEPS.indexOf(step) + 1).find((s) => applies(s, request)) ?? 'done';
}

/** The step's timing: its first start kept across waits, its end once it advances. */
function withTiming(timings: StepTiming[], step: Step, began: Date, finished: boolean): StepTiming[] {
  const current = timings.find((t) => t.step === step && t.finished_at === null);
  const entry = current ?? { step, started_at: began.toISOString(), finished_at: null };
  const rest = timings.filter((t) => t !== current);
  return [...rest, { ...entry, finished_at: finished ? new Date().toISOString() : null }];
}

async function sleepUnlessCancelled(ms: number, job: RunningJob<unknown>): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && !job.cancelRequested())
    await new Promise((resolve) => setTimeout(resolve, Math.min(250, until - Date.now())));
}
