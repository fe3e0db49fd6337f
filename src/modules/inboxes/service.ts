// Bulk inbox generation: many working mailboxes on one or more domains in one request, as a job with
// progress (GET /v1/jobs/:id). The request is planned at once (names and addresses decided, collisions
// avoided) and the plan is stored with the job, so a worker that resumes it after a restart makes the
// same mailboxes; each chunk's mailboxes and its progress commit together, so none is made twice.
import { randomInt } from 'node:crypto';
import { sha256 } from '../../core/crypto.ts';
import { validationFailed } from '../../core/errors.ts';
import type { DomainsService } from '../domains/service.ts';
import type { JobRow, RunningJob, TrackedJobsService } from '../jobs/service.ts';
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

/** The stored plan: the options, the domains, and one [domain index, local part, first, last] per inbox. */
export interface GenerationPlan {
  policy: PasswordPolicy;
  exportPasswords: boolean;
  quotaBytes: number | null;
  dailySendLimit: number | null;
  domains: { id: string; name: string }[];
  items: [number, string, string, string][];
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
    const idempotency = options.idempotencyKey
      ? { key: options.idempotencyKey, requestHash: sha256(JSON.stringify(request)) }
      : undefined;
    if (idempotency) {
      const earlier = await this.#o.jobs.findByKey(organizationId, GENERATE_KIND, idempotency);
      if (earlier) return { job: earlier, replayed: true };
    }
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
    const template = templateOf(request.pattern ?? 'first.last');
    const names = await this.#names(request);
    const domains: GenerationPlan['domains'] = [];
    const items: GenerationPlan['items'] = [];
    for (const [i, wanted] of request.domains.entries()) {
      const domain = await this.#domain(organizationId, wanted, `domains.${i}`);
      if (domains.some((d) => d.id === domain.id))
        throw validationFailed(`domains.${i}`, `${domain.name} is named twice`);
      const taken = await this.#o.mailboxes.takenLocalParts(organizationId, domain.id);
      const planned = planAddresses(
        wanted.count,
        template,
        names,
        taken,
        (l) => reservedLocalPartProblem(l) !== null,
      );
      for (const p of planned) items.push([domains.length, p.localPart, p.name.first, p.name.last]);
      domains.push({ id: domain.id, name: domain.name });
    }
    return {
      policy: request.password_policy ?? DEFAULT_POLICY,
      exportPasswords: request.export_passwords ?? true,
      quotaBytes: request.quota_bytes ?? null,
      dailySendLimit: request.daily_send_limit ?? null,
      domains,
      items,
    };
  }

  async #names(request: GenerateRequest): Promise<NameSource> {
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

  /** Creates the planned inboxes from where the job stands, a chunk per transaction. */
  async #run(job: RunningJob<GenerationPlan>): Promise<Record<string, unknown>> {
    const plan = job.input;
    for (let at = job.done; at < plan.items.length; at += CHUNK) {
      if (job.cancelRequested()) break;
      const chunk = plan.items.slice(at, at + CHUNK);
      const specs = chunk.map(([d, localPart, first, last]): NewMailboxSpec => {
        const password = generatePassword(plan.policy);
        return {
          domain: plan.domains[d],
          localPart,
          firstName: first,
          lastName: last,
          password,
          generatedUnder: plan.policy,
          exportable: plan.exportPasswords,
          quotaBytes: plan.quotaBytes ?? undefined,
          dailySendLimit: plan.dailySendLimit,
        };
      });
      await this.#o.mailboxes.createMany(job.organizationId, specs, async (tx, results) => {
        const errors = results.flatMap((r, i) =>
          r.ok
            ? []
            : [{ item: `${chunk[i][1]}@${plan.domains[chunk[i][0]].name}`, message: r.error.message }],
        );
        await job.progress(tx, chunk.length, errors);
      });
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
