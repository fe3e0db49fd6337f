// Outbound delivery to remote MX hosts, as ZoneMTA's and Haraka's outbound do it. One attempt reads as
// its steps:
//   policy     MTA-STS policy of the destination domain (cached)
//   lease      a pooled connection to the domain, or a slot to open one (FIFO beyond the limit; with
//              several workers also one of the installation's slots, transport/limits.ts). With sending
//              IPs, a connection from the message's preferred address, else a slot, else one from another
//              address of its pool that still has warmup capacity
//   open       MX lookup, then each MX host and address in order until one sets up a session, bound to
//              the message's address of the MX address's family (none of that family: the address is skipped)
//   rate       wait until the domain's per-minute budget allows another message to start
//   send       MAIL FROM / RCPT TO / DATA, one result per recipient
//   release    park the connection for the next message, or QUIT it
// Every failure becomes per-recipient results: `deliver` never rejects.
import { isIP } from 'node:net';
import { rootCertificates, type SecureContext, createSecureContext } from 'node:tls';
import { domainToASCII } from 'node:url';
import type { Logger } from 'pino';
import type { MailauthResolver } from '../../../core/resolver.ts';
import { MtaStsPolicies, mxAllowed, type StsPolicy } from './mta-sts.ts';
import { type MxHost, resolveAddresses, resolveRoute } from './mx.ts';
import type { SharedLimits } from './limits.ts';
import { DomainPool } from './pool.ts';
import { RateGate, SharedRateGate } from './rate.ts';
import { forAll, type Verdict, verdict } from './results.ts';
import { SmtpSession } from './session.ts';
import type { AttemptResult, MessageSource, OutboundEnvelope, RecipientResult } from './types.ts';

export interface TransportOptions {
  resolver: MailauthResolver;
  /** MAILROOM_OUTBOUND_PORT: port of remote MX hosts (25 in production, a local sink in tests). */
  port: number;
  /** EHLO name: MAILROOM_HOSTNAME. */
  heloName: string;
  /** EHLO names of sending IPs that have their own (MAILROOM_OUTBOUND_IP_HELO); others use `heloName`. */
  heloNames?: ReadonlyMap<string, string>;
  /** Port for fetching MTA-STS policies over HTTPS (443; tests point it at a local HTTPS server). */
  mtaStsPort: number;
  /** Extra trust anchors (PEM) for MTA-STS policy fetches and enforced TLS; tests use a local CA. */
  ca?: string[];
  connectionsPerDomain: number; // max simultaneous connections to one destination domain
  messagesPerConnection: number; // then QUIT and open a new one
  ratePerDomainPerMinute: number; // 0 = unlimited; messages started per destination domain per minute (wait, don't fail)
  connectTimeoutMs: number;
  /** Greeting/command/DATA timeout. */
  commandTimeoutMs: number;
  /** Idle pooled connections are closed (QUIT) after this. */
  idleTimeoutMs: number;
  /**
   * Connection and rate limits for the whole installation (several workers); without it the limits are
   * this process's (exact when it is the only worker).
   */
  shared?: SharedLimits | null;
  log: Logger;
}
/** Internal knobs, for tests: the rate limit window (a minute) in milliseconds. */
export interface TransportTuning {
  rateWindowMs?: number;
}

const SHUTTING_DOWN = new Error('outbound transport is shutting down');

/** At most this many addresses are tried per attempt, over all MX hosts (Postfix: smtp_mx_address_limit). */
const MAX_ADDRESSES = 10;
const MINUTE = 60_000;
/** How long an idle connection is kept when the installation shares its connection slots. */
const SHARED_IDLE_MS = 1_000;

type Opened = { session: SmtpSession } | { failure: Verdict };

export class Transport {
  readonly #o: TransportOptions;
  readonly #rateWindowMs: number;
  readonly #secureContext: SecureContext | undefined;
  readonly #policies: MtaStsPolicies;
  readonly #pools = new Map<string, DomainPool<SmtpSession>>();
  readonly #gates = new Map<string, RateGate | SharedRateGate>();
  /** The installation-wide slot each open connection holds (shared limits), given back when it closes. */
  readonly #slots = new WeakMap<SmtpSession, () => void>();
  readonly #closingSignal = new AbortController();
  readonly #inFlight = new Set<Promise<AttemptResult>>();
  readonly #quits = new Set<Promise<void>>();
  #closing = false;

  constructor(options: TransportOptions, tuning: TransportTuning = {}) {
    this.#o = options;
    this.#rateWindowMs = tuning.rateWindowMs ?? MINUTE;
    // Extra anchors add to the system roots (a bare `ca` would replace them).
    const trust = options.ca?.length ? [...rootCertificates, ...options.ca] : undefined;
    this.#secureContext = trust ? createSecureContext({ ca: trust }) : undefined;
    this.#policies = new MtaStsPolicies({
      resolver: options.resolver,
      port: options.mtaStsPort,
      trust,
      log: options.log,
    });
  }

  deliver(envelope: OutboundEnvelope): Promise<AttemptResult> {
    const attempt = new Attempt(envelope, this.#o.port);
    const run = this.#checked(envelope, attempt).catch((err: unknown) => {
      this.#o.log.error({ err, domain: envelope.domain }, 'outbound delivery failed unexpectedly');
      return attempt.finish(verdict('deferred', null, '4.3.0', `internal error: ${(err as Error).message}`));
    });
    this.#inFlight.add(run);
    run.finally(() => this.#inFlight.delete(run));
    return run;
  }

  /**
   * Lets every delivery that has started finish; those still waiting for the rate limit or a
   * connection give up (`notAttempted`). Then QUITs the pooled connections.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#closingSignal.abort(SHUTTING_DOWN);
    for (const gate of this.#gates.values()) gate.close(SHUTTING_DOWN);
    for (const pool of this.#pools.values()) pool.refuseWaiters(SHUTTING_DOWN);
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
    for (const pool of this.#pools.values()) pool.closeIdle();
    this.#pools.clear();
    while (this.#quits.size) await Promise.allSettled([...this.#quits]);
  }

  /**
   * Addresses that cannot be written into MAIL FROM / RCPT TO bounce at once (nodemailer would refuse
   * the whole envelope for one of them); the rest go on.
   */
  async #checked(envelope: OutboundEnvelope, attempt: Attempt): Promise<AttemptResult> {
    if (this.#closing) return attempt.notStarted();
    if (envelope.mailFrom !== '' && !usableAddress(envelope.mailFrom)) {
      return attempt.finish(
        verdict('bounced', 553, '5.1.7', `bad sender address syntax: ${JSON.stringify(envelope.mailFrom)}`),
      );
    }
    const good = envelope.recipients.filter(usableAddress);
    if (good.length === envelope.recipients.length) return this.#deliver(envelope, attempt);
    const result = good.length
      ? await this.#deliver({ ...envelope, recipients: good }, attempt)
      : attempt.finish(null);
    const sent = new Map(result.recipients.map((r) => [r.address, r]));
    result.recipients = envelope.recipients.map(
      (address) =>
        sent.get(address) ?? {
          address,
          ...verdict('bounced', 553, '5.1.3', `bad recipient address syntax: ${JSON.stringify(address)}`),
        },
    );
    return result;
  }

  async #deliver(envelope: OutboundEnvelope, attempt: Attempt): Promise<AttemptResult> {
    if (!envelope.recipients.length) return attempt.finish(null);
    // IDNs are looked up and pooled by their ASCII form; an invalid name maps to ''.
    const domain = domainToASCII(envelope.domain.trim().toLowerCase().replace(/\.$/, ''));
    if (!domain) {
      return attempt.finish(
        verdict('bounced', 550, '5.1.2', `invalid domain name ${JSON.stringify(envelope.domain)}`),
      );
    }

    const policy = await this.#policies.policyFor(domain);
    attempt.mtaSts = policy?.mode ?? 'none';
    const key = securityKey(policy);
    const source = envelope.source ?? null;
    const pool = this.#pool(domain);
    let session: SmtpSession | null;
    try {
      session = source ? await this.#lease(pool, key, source) : await pool.acquire(key);
    } catch (err) {
      if (err === SHUTTING_DOWN) return attempt.notStarted();
      throw err;
    }
    let reusable = false;
    try {
      for (let tries = 1; ; tries++) {
        if (!session) {
          const release = await this.#takeSlot(domain);
          const opened = await this.#open(domain, policy, key, source);
          if ('failure' in opened) {
            release();
            return attempt.finish(opened.failure);
          }
          session = opened.session;
          this.#slots.set(session, release);
          // It may have ended already, before the slot was tied to it.
          if (session.gone) release();
        }
        // The message's turn within the rate, taken once its connection is ready: what counts is when
        // it starts, not when it began to wait for a connection.
        if (tries === 1) await this.#gate(domain).take();
        const sent = await session.send(envelope);
        // A reused connection the server had dropped in the meantime: once more on a new one.
        if (sent.stale && tries === 1) {
          this.#track(session.quit());
          session = null;
          continue;
        }
        attempt.reached(session);
        reusable = sent.reusable && session.messages < this.#o.messagesPerConnection;
        return attempt.finish(sent.recipients);
      }
    } catch (err) {
      if (err === SHUTTING_DOWN) return attempt.notStarted();
      throw err;
    } finally {
      pool.release(session, reusable);
      this.#forgetIdle(domain);
    }
  }

  /**
   * A connection bound to one of the message's addresses, or a slot to open one. A connection from an
   * address other than the preferred ones is used only once that address's capacity is taken.
   */
  async #lease(
    pool: DomainPool<SmtpSession>,
    key: string,
    source: MessageSource,
  ): Promise<SmtpSession | null> {
    const preferred = [source.ipv4[0], source.ipv6[0]].filter((ip): ip is string => ip !== undefined);
    let others = [...source.ipv4.slice(1), ...source.ipv6.slice(1)];
    const keyOf = (ip: string) => `${key}@${ip}`;
    for (;;) {
      const session = await pool.acquire(preferred.map(keyOf), others.map(keyOf));
      const local = session?.localAddress;
      if (!session || !local || preferred.includes(local) || (await source.take(local))) return session;
      // That address used its cap meanwhile: the connection goes back for others, and this message
      // no longer takes connections from it.
      pool.release(session, true);
      others = others.filter((ip) => ip !== local);
    }
  }

  /** An installation-wide connection slot (shared limits), or nothing to take when there are none. */
  async #takeSlot(domain: string): Promise<() => void> {
    if (!this.#o.shared) return () => {};
    return this.#o.shared.takeSlot(domain, this.#o.connectionsPerDomain, this.#closingSignal.signal);
  }

  /** A connection ended (closed by us or the server): its slot goes back, and the pool forgets it. */
  #gone(domain: string, session: SmtpSession): void {
    this.#slots.get(session)?.();
    this.#pools.get(domain)?.forget(session);
  }

  /**
   * MX lookup, then each allowed host and address in order until a session is set up. With a source,
   * each address is reached from the source address of its family, and skipped when there is none.
   */
  async #open(
    domain: string,
    policy: StsPolicy | null,
    key: string,
    source: MessageSource | null,
  ): Promise<Opened> {
    const route = await resolveRoute(this.#o.resolver, domain);
    if (!route.ok) return { failure: route.failure };
    const hosts = this.#allowedHosts(domain, route.hosts, policy);
    if (!hosts.length) {
      const names = route.hosts.map((h) => h.name).join(', ');
      const reason = `MTA-STS policy of ${domain} (enforce) allows none of its MX hosts (${names})`;
      return { failure: verdict('deferred', null, '4.7.5', reason) };
    }
    const enforce = policy?.mode === 'enforce';
    let tried = 0;
    let lastError: string | null = null;
    let dnsError: unknown = null;
    const unbindable = new Set<4 | 6>();
    for (const host of hosts) {
      if (tried >= MAX_ADDRESSES) break;
      const found = host.addresses
        ? { addresses: host.addresses, error: null }
        : await resolveAddresses(this.#o.resolver, host.name);
      dnsError ??= found.error;
      for (const ip of found.addresses) {
        const local = source ? await sourceFor(source, ip) : null;
        if (source && !local) {
          unbindable.add(isIP(ip) === 6 ? 6 : 4);
          continue;
        }
        if (tried++ >= MAX_ADDRESSES) break;
        try {
          return { session: await this.#connect(domain, host.name, ip, enforce, key, local) };
        } catch (err) {
          lastError = `${host.name} [${ip}]: ${(err as Error).message}`;
          this.#o.log.debug({ err, domain, mx: host.name, ip }, 'MX host not usable, trying the next');
        }
      }
    }
    if (!lastError && unbindable.size) return { failure: noSourceFor(domain, unbindable) };
    return { failure: unreachable(domain, lastError, dnsError) };
  }

  #connect(
    domain: string,
    mx: string,
    ip: string,
    enforce: boolean,
    key: string,
    local: string | null,
  ): Promise<SmtpSession> {
    return SmtpSession.open({
      mx,
      ip,
      port: this.#o.port,
      localAddress: local,
      // The HELO follows the bound address: receivers compare it with that address's PTR name.
      heloName: (local && this.#o.heloNames?.get(local)) || this.#o.heloName,
      verifyTls: enforce,
      secureContext: this.#secureContext,
      connectTimeoutMs: this.#o.connectTimeoutMs,
      commandTimeoutMs: this.#o.commandTimeoutMs,
      key: local ? `${key}@${local}` : key,
      onGone: (session) => this.#gone(domain, session),
    });
  }

  /** Under an enforced MTA-STS policy only the MX hosts it names; a testing policy only logs a mismatch. */
  #allowedHosts(domain: string, hosts: MxHost[], policy: StsPolicy | null): MxHost[] {
    if (!policy || policy.mode === 'none') return hosts;
    const allowed = hosts.filter((h) => mxAllowed(policy, h.name));
    if (policy.mode === 'enforce') return allowed;
    if (allowed.length < hosts.length) {
      this.#o.log.info(
        { domain, mx: hosts.map((h) => h.name) },
        'MTA-STS (testing): MX hosts outside the policy',
      );
    }
    return hosts;
  }

  #pool(domain: string): DomainPool<SmtpSession> {
    let pool = this.#pools.get(domain);
    if (!pool) {
      // With shared limits an idle connection holds one of the installation's slots that another worker
      // may be waiting for: it is kept only briefly.
      const idleMs = this.#o.shared ? Math.min(this.#o.idleTimeoutMs, SHARED_IDLE_MS) : this.#o.idleTimeoutMs;
      pool = new DomainPool(this.#o.connectionsPerDomain, idleMs, (quit) => this.#track(quit));
      this.#pools.set(domain, pool);
    }
    return pool;
  }

  #gate(domain: string): RateGate | SharedRateGate {
    let gate = this.#gates.get(domain);
    if (!gate) {
      const limit = this.#o.ratePerDomainPerMinute;
      const shared = this.#o.shared;
      // Shared starts are reserved a sixtieth of the budget at a time: one round trip per block.
      gate =
        shared && limit > 0
          ? new SharedRateGate(
              (want, signal) => shared.reserveStarts(domain, limit, want, signal),
              Math.ceil(limit / 60),
              shared.useMs,
            )
          : new RateGate(limit, this.#rateWindowMs);
      this.#gates.set(domain, gate);
    }
    return gate;
  }

  /** Pools and gates of domains no longer written to are dropped, so the maps stay small. */
  #forgetIdle(domain: string): void {
    if (this.#pools.get(domain)?.empty) this.#pools.delete(domain);
    if (this.#gates.get(domain)?.idle) this.#gates.delete(domain);
  }

  #track(quit: Promise<void>): void {
    this.#quits.add(quit);
    quit.finally(() => this.#quits.delete(quit));
  }
}

/** Why no session could be set up: the last connection error, else the DNS failure, else no address at all. */
function unreachable(domain: string, lastError: string | null, dnsError: unknown): Verdict {
  if (lastError) {
    return verdict(
      'deferred',
      null,
      '4.4.1',
      `no MX host of ${domain} could be reached; last error: ${lastError}`,
    );
  }
  if (dnsError) {
    const reason = (dnsError as NodeJS.ErrnoException).code ?? String(dnsError);
    return verdict(
      'deferred',
      null,
      '4.4.3',
      `address lookup for the MX hosts of ${domain} failed: ${reason}`,
    );
  }
  return verdict('deferred', null, '4.4.4', `no MX host of ${domain} has an address`);
}

/** Every MX address was of a family the message has no source address of (an IPv6-only MX, IPv4 sources). */
function noSourceFor(domain: string, families: Set<4 | 6>): Verdict {
  const family = [...families].map((f) => `IPv${f}`).join(' and ');
  return verdict(
    'deferred',
    null,
    '4.4.0',
    `the MX hosts of ${domain} have only ${family} addresses, and no sending IP of that family may be used for this message (MAILROOM_OUTBOUND_IPS, IP pool)`,
  );
}

/** The address to reach `ip` from: the first of its family with capacity (the preferred one has it). */
async function sourceFor(source: MessageSource, ip: string): Promise<string | null> {
  for (const local of isIP(ip) === 6 ? source.ipv6 : source.ipv4) if (await source.take(local)) return local;
  return null;
}

/** Something nodemailer can put between angle brackets: local@domain, no spaces, brackets or line ends. */
function usableAddress(address: string): boolean {
  return /^[^\s<>]+@[^\s<>@]+$/.test(address);
}

/** Connections opened under an enforced policy are only reused under that same policy. */
function securityKey(policy: StsPolicy | null): string {
  return policy?.mode === 'enforce' ? `enforce:${policy.id}` : 'opportunistic';
}

/** What one attempt found out, turned into its result. */
class Attempt {
  readonly #envelope: OutboundEnvelope;
  readonly #port: number;
  readonly #startedAt = new Date();
  mtaSts: AttemptResult['mtaSts'] = 'none';
  #session: SmtpSession | null = null;

  constructor(envelope: OutboundEnvelope, port: number) {
    this.#envelope = envelope;
    this.#port = port;
  }

  reached(session: SmtpSession): void {
    this.#session = session;
  }

  /** The transport shut down before this message was started. */
  notStarted(): AttemptResult {
    return {
      ...this.finish(verdict('deferred', null, '4.3.2', 'outbound transport is shutting down')),
      notAttempted: true,
    };
  }

  finish(outcome: Verdict | RecipientResult[] | null): AttemptResult {
    const recipients = Array.isArray(outcome)
      ? outcome
      : outcome
        ? forAll(this.#envelope.recipients, outcome)
        : [];
    return {
      recipients,
      mx: this.#session?.mx ?? null,
      ip: this.#session?.ip ?? null,
      localAddress: this.#session?.localAddress ?? null,
      port: this.#port,
      tls: this.#session?.tls ?? null,
      mtaSts: this.mtaSts,
      startedAt: this.#startedAt,
      durationMs: Date.now() - this.#startedAt.getTime(),
    };
  }
}
