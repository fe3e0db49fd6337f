// The contract between the health scorer and what feeds it. An input looks at one thing (the DNS
// records, blocklist listings, bounces, unsubscribe headers; complaints, sending IPs' PTR and warmup
// from their own modules) for many domains or mailboxes of one organisation at once, and answers each
// one's findings. The scorer adds the penalties of an input's findings up to the input's weight, and the
// score is 100 minus what the inputs take together (scorer.ts).
//
// A module plugs an input in either way:
//   - listed before health in app.ts: its service implements `HealthInputProvider` (`healthInputs()`),
//     which health's index.ts collects when it creates the health service;
//   - listed after health: it calls `services.health.register(input)` in its own `create`.
// An input's `triggers` name the events after which its findings may have changed; the subjects they
// name are marked due and recomputed within seconds.

export type SubjectKind = 'domain' | 'mailbox';
export type Severity = 'info' | 'warning' | 'critical';

/** One thing wrong (or worth knowing) about a domain or a mailbox. */
export interface Finding {
  /** Stable, dotted: `dns.spf_missing`, `bounces.rate_high`. */
  code: string;
  severity: Severity;
  title: string;
  /** What was seen, as data: the record found, the rate and its counts, the list and its code. */
  evidence: Record<string, unknown>;
  /** What to do about it, in words a person can follow. */
  fix: string;
  /** Points this finding takes from the score (0-100), before its input's weight caps the sum. */
  penalty: number;
}

/** A scored domain or mailbox, as inputs see it. */
export interface Subject {
  kind: SubjectKind;
  id: string;
  organizationId: string;
  /** The domain itself, or the mailbox's domain. */
  domainId: string;
  /** The domain name, or the mailbox's address (lower case). */
  name: string;
}

/** The subjects an input evaluates together: one organisation, one kind. */
export interface InputBatch {
  organizationId: string;
  kind: SubjectKind;
  subjects: Subject[];
  /** The clock's time (windows end here). */
  now: Date;
  /**
   * Shared by every batch of one recomputation run: an input computes what it reads for a whole
   * organisation once (`memo('bounces:<org>', load)`), whichever batch asks first.
   */
  memo<T>(key: string, load: () => Promise<T>): Promise<T>;
}

/** Which scored subjects an event concerns (`organization`: all of the organisation's, of that kind). */
export type SubjectSelector =
  | { kind: SubjectKind; id: string }
  | { kind: SubjectKind; name: string }
  | { kind: SubjectKind; organization: true }
  /** The domain and the mailbox (From address) of an outbound message. */
  | { message: string };

export interface TriggerEvent {
  type: string;
  organizationId: string;
  data: any;
}

export interface HealthInput {
  /** Stable, short: `dns`, `blocklists`, `bounces`, `unsubscribe`, `complaints`, `ptr`, `warmup`. */
  readonly name: string;
  /** What it looks at, for people: "Authentication records". */
  readonly title: string;
  /** The kinds of subject it scores. */
  readonly kinds: readonly SubjectKind[];
  /** The most points its findings together take from the score. */
  readonly weight: number;
  /** Findings per subject id; a subject missing from the answer has none. */
  evaluate(batch: InputBatch): Promise<Map<string, Finding[]>>;
  /**
   * Events after which this input's findings may have changed, by type, and the subjects concerned.
   * Handled in the emitting transaction (`onEmit`), except types listed in `afterCommit`.
   */
  readonly triggers?: Readonly<Record<string, (event: TriggerEvent) => SubjectSelector[]>>;
  /**
   * Trigger types handled after their transaction commits, in worker processes, gathered for a second
   * (`message.bounced`: frequent, and sent from delivery's hot path).
   */
  readonly afterCommit?: readonly string[];
}

/** A service that contributes inputs (for modules listed before health in app.ts). */
export interface HealthInputProvider {
  healthInputs(): HealthInput[];
}

export function isHealthInputProvider(value: unknown): value is HealthInputProvider {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { healthInputs?: unknown }).healthInputs === 'function'
  );
}
