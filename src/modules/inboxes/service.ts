// Bulk inbox generation: many working mailboxes on one or more domains in one request, as a job with
// progress (GET /v1/jobs/:id). The request is planned at once (names and addresses decided, collisions
// avoided) and the plan is stored with the job, so a worker that resumes it after a restart makes the
// same mailboxes; each chunk's mailboxes and its progress commit together, so none is made twice.
import { randomInt } from 'node:crypto';
import type { Db } from '../../core/db.ts';
import { validationFailed } from '../../core/errors.ts';
import type { DomainsService } from '../domains/service.ts';
import type { ItemError, JobRow, RunningJob, TrackedJobsService } from '../jobs/service.ts';
import {
  DEFAULT_POLICY,
  generatePassword,
  type MailboxesService,
  type NewMailboxSpec,
  type PasswordPolicy,
  reservedLocalPartProblem,
} from '../mailboxes/service.ts';
import { listNames, localeNames, type NameSource, PATTERNS, planAddresses, templateOf } from './names.ts';

export const GENERATE_KIND = 'inboxes.generate';
export const PATTERNS_DESCRIPTION = `Patterns: ${PATTERNS.join(', ')}, or a template of {first}, {last}, {f} (first initial), {l} (last initial) and {n} (a number, added only where needed to be unique), e.g. {first}.{last}{n}.`;
export const MAX_PER_DOMAIN = 5_000;
export const MAX_PER_REQUEST = 50_000;
/** Mailboxes created per transaction (and per progress step). */
const CHUNK = 100;

export interface GenerateRequest {
  domains: { domain_id?: string | null; domain?: string | null; count: number }[];
  pattern?: string | null;
  locale?: string | null;
  names?: { first: string[]; last: string[] } | null;
  password_policy?: PasswordPolicy | null;
  export_passwords?: boolean | null;
  quota_bytes?: number | null;
  daily_send_limit?: number | null;
}

/** What every inbox of a request gets. */
export interface InboxOptions {
  policy: PasswordPolicy;
  exportPasswords: boolean;
  quotaBytes: number | null;
  dailySendLimit: number | null;
}

/** How a request names its inboxes. */
export type NamingRequest = Pick<GenerateRequest, 'pattern' | 'locale' | 'names'>;
export interface Naming {
  template: string;
  names: NameSource;
}

/** The stored plan: the options, the domains, and one [domain index, local part, first, last] per inbox. */
export interface GenerationPlan extends InboxOptions {
  domains: { id: string; name: string }[];
  items: [number, string, string, string][];
}

/** The options a request gives its inboxes, with the defaults. */
export function inboxOptions(request: Omit<GenerateRequest, 'domains'>): InboxOptions {
  return {
    policy: request.password_policy ?? DEFAULT_POLICY,
    exportPasswords: request.export_passwords ?? true,
    quotaBytes: request.quota_bytes ?? null,
    dailySendLimit: request.daily_send_limit ?? null,
  };
}

export interface InboxesOptions {
  domains: DomainsService;
  mailboxes: MailboxesService;
  jobs: TrackedJobsService;
}

export class InboxesService {
  readonly #o: InboxesOptions;

  constructor(options: InboxesOptions) {
    this.#o = options;
    options.jobs.register<GenerationPlan>(GENERATE_KIND, { run: (job) => this.#run(job) });
  }

  /**
   * Plans the inboxes and starts the job. The same Idempotency-Key with the same request answers the
   * first job again and makes nothing new.
   */
  async generate(
    organizationId: string,
    request: GenerateRequest,
    options: { idempotencyKey?: string; createdBy: string | null },
  ): Promise<{ job: JobRow; replayed: boolean }> {
    const { idempotency, earlier } = await this.#o.jobs.idempotencyOf(
      organizationId,
      GENERATE_KIND,
      options.idempotencyKey,
      request,
    );
    if (earlier) return { job: earlier, replayed: true };
    const plan = await this.plan(organizationId, request);
    return this.#o.jobs.create(organizationId, {
      kind: GENERATE_KIND,
      input: plan,
      total: plan.items.length,
      createdBy: options.createdBy,
      idempotency,
    });
  }

  /** Decides every inbox's name and address (422 for what cannot be made, 403 past the limit). */
  async plan(organizationId: string, request: GenerateRequest): Promise<GenerationPlan> {
    const total = request.domains.reduce((n, d) => n + d.count, 0);
    if (total > MAX_PER_REQUEST)
      throw validationFailed('domains', `at most ${MAX_PER_REQUEST} inboxes a request`);
    await this.#o.mailboxes.checkRoomFor(organizationId, total);
    const naming = await this.naming(request);
    const domains: GenerationPlan['domains'] = [];
    const items: GenerationPlan['items'] = [];
    for (const [i, wanted] of request.domains.entries()) {
      const domain = await this.#domain(organizationId, wanted, `domains.${i}`);
      if (domains.some((d) => d.id === domain.id))
        throw validationFailed(`domains.${i}`, `${domain.name} is named twice`);
      for (const [localPart, first, last] of await this.planDomain(
        organizationId,
        domain.id,
        wanted.count,
        naming,
      ))
        items.push([domains.length, localPart, first, last]);
      domains.push({ id: domain.id, name: domain.name });
    }
    return { ...inboxOptions(request), domains, items };
  }

  /** The pattern and the source of names a request asks for (422 for a bad pattern or locale). */
  async naming(request: NamingRequest): Promise<Naming> {
    return { template: templateOf(request.pattern ?? 'first.last'), names: await this.#names(request) };
  }

  /** `count` inboxes for one domain: [local part, first name, last name], none colliding. */
  async planDomain(
    organizationId: string,
    domainId: string,
    count: number,
    naming: Naming,
  ): Promise<[string, string, string][]> {
    const taken = await this.#o.mailboxes.takenLocalParts(organizationId, domainId);
    const planned = planAddresses(
      count,
      naming.template,
      naming.names,
      taken,
      (l) => reservedLocalPartProblem(l) !== null,
    );
    return planned.map((p) => [p.localPart, p.name.first, p.name.last]);
  }

  /**
   * Creates planned inboxes of one domain with generated passwords, in one transaction; `alsoInTx`
   * gets the per-item errors there (a job's progress).
   */
  async createPlanned(
    organizationId: string,
    domain: { id: string; name: string },
    items: [string, string, string][],
    options: InboxOptions,
    alsoInTx: (tx: Db, errors: ItemError[]) => Promise<void>,
  ): Promise<void> {
    const specs = items.map(
      ([localPart, first, last]): NewMailboxSpec => ({
        domain,
        localPart,
        firstName: first,
        lastName: last,
        password: generatePassword(options.policy),
        generatedUnder: options.policy,
        exportable: options.exportPasswords,
        quotaBytes: options.quotaBytes ?? undefined,
        dailySendLimit: options.dailySendLimit,
      }),
    );
    await this.#o.mailboxes.createMany(organizationId, specs, (tx, results) =>
      alsoInTx(
        tx,
        results.flatMap((r, i) =>
          r.ok ? [] : [{ item: `${items[i][0]}@${domain.name}`, message: r.error.message }],
        ),
      ),
    );
  }

  async #names(request: NamingRequest): Promise<NameSource> {
    if (request.names) {
      const { first, last } = request.names;
      if (!first.length || !last.length)
        throw validationFailed('names', 'give at least one first and one last name');
      return listNames(first, last, randomInt);
    }
    return localeNames(request.locale ?? 'en');
  }

  async #domain(organizationId: string, wanted: GenerateRequest['domains'][number], field: string) {
    if (wanted.domain_id) return this.#o.domains.get(organizationId, wanted.domain_id);
    const domain = wanted.domain ? await this.#o.domains.byName(organizationId, wanted.domain) : null;
    if (!domain)
      throw validationFailed(field, `${wanted.domain ?? '(none)'} is not one of this organisation's domains`);
    return domain;
  }

  /** Creates the planned inboxes from where the job stands, a chunk (of one domain) per transaction. */
  async #run(job: RunningJob<GenerationPlan>): Promise<Record<string, unknown>> {
    const plan = job.input;
    for (let at = job.done; at < plan.items.length; ) {
      if (job.cancelRequested()) break;
      const d = plan.items[at][0];
      let end = at;
      while (end < plan.items.length && end - at < CHUNK && plan.items[end][0] === d) end++;
      const chunk = plan.items.slice(at, end).map(([, l, f, s]): [string, string, string] => [l, f, s]);
      await this.createPlanned(job.organizationId, plan.domains[d], chunk, plan, (tx, errors) =>
        job.progress(tx, chunk.length, errors),
      );
      at = end;
    }
    return {
      domains: plan.domains.map((d) => ({
        domain_id: d.id,
        name: d.name,
        links: {
          mailboxes: `/v1/mailboxes?domain_id=${d.id}`,
          export: `/v1/exports/inboxes.csv?domain_id=${d.id}`,
        },
      })),
    };
  }
}
