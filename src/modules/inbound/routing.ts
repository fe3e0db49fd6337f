// Where each recipient of an accepted message goes. In order, for one recipient:
//   1. loop check   the message already passed through this address (Delivered-To) or too many hops
//   2. SRS bounce   a reply to a forwarding return address goes back to the original sender
//   3. rules        the domain's enabled rules for this address, by priority: forward adds targets and
//                   goes on; redirect, store, block and drop decide and stop
//   4. mailbox      stored in INBOX
//   5. alias        expanded into its targets (hosted ones resolved again, external ones forwarded)
//   6. catch-all    the domain's catch-all target, resolved like an alias target
import type { RouteAction, RouteKind } from '../messages/tables.ts';
import type { RuleCondition, RuleRow } from '../rules/tables.ts';
import { domainOf, parseRecipient } from './address.ts';
import type { Srs } from './srs.ts';
import type { LocalTarget } from './store.ts';

/** What routing learnt about the message that rules test. */
export interface MessageFacts {
  sender: string;
  subject: string;
  size: number;
  hasAttachments: boolean;
  /** Addresses in the message's Delivered-To headers (lower case). */
  deliveredTo: Set<string>;
  receivedHops: number;
}

export type Delivery =
  | { kind: 'mailbox'; mailboxId: string; folder: string }
  | { kind: 'forward'; address: string; bounce: boolean };

export interface RouteDecision {
  recipient: string;
  route: RouteKind;
  targetId: string | null;
  action: RouteAction;
  destination: string | null;
  detail: string | null;
  delivery: Delivery | null;
  /** The hosted domain the decision was made for (forwarded copies are sent as this domain). */
  domainId: string;
  domain: string;
}

/** The lookups routing needs (cached by the caller: they repeat for every message to an address). */
export interface RoutingLookups {
  localTarget(organizationId: string, domain: string, localPart: string): Promise<LocalTarget | null>;
  rules(domainId: string): Promise<RuleRow[]>;
}

export const MAX_HOPS = 50;
const MAX_ALIAS_DEPTH = 8;

export class Router {
  readonly #lookups: RoutingLookups;
  readonly #organizationId: string;
  readonly #srs: Srs;
  readonly #facts: MessageFacts;
  /** Rules that matched, counted once per message. */
  readonly matchedRules = new Set<string>();

  constructor(lookups: RoutingLookups, organizationId: string, srs: Srs, facts: MessageFacts) {
    this.#lookups = lookups;
    this.#organizationId = organizationId;
    this.#srs = srs;
    this.#facts = facts;
  }

  async route(address: string, quarantine: boolean): Promise<RouteDecision[]> {
    const recipient = parseRecipient(address);
    if (!recipient) return [this.#none(address, '', '', 'not a hosted address')];
    const target = await this.#lookups.localTarget(
      this.#organizationId,
      recipient.domain,
      recipient.localPart,
    );
    if (!target)
      return [this.#none(address, '', recipient.domain, 'the domain no longer receives mail here')];
    const base = { recipient: recipient.address, domainId: target.domainId, domain: recipient.domain };

    if (this.#facts.deliveredTo.has(recipient.address) || this.#facts.receivedHops >= MAX_HOPS) {
      return [
        { ...base, ...decided('none', null, 'loop', null, 'mail forwarding loop detected'), delivery: null },
      ];
    }

    if (!target.mailboxId && !target.alias) {
      const original = this.#srs.reverse(recipient.localPart);
      if (original) {
        return [
          {
            ...base,
            ...decided(
              'srs',
              null,
              'forward',
              original,
              'bounce to a forwarding address, returned to its sender',
            ),
            delivery: { kind: 'forward', address: original, bounce: true },
          },
        ];
      }
    }

    const decisions: RouteDecision[] = [];
    for (const rule of await this.#lookups.rules(target.domainId)) {
      if (rule.recipient !== null && rule.recipient !== recipient.localPart) continue;
      if (!matches(rule.conditions, this.#facts)) continue;
      this.matchedRules.add(rule.id);
      const detail = `rule "${rule.name}"`;
      if (rule.action === 'forward' || rule.action === 'redirect') {
        for (const t of rule.targets) {
          decisions.push(
            ...(await this.#expand(base, t, 'rule', rule.id, rule.action, detail, 0, new Set())),
          );
        }
        if (rule.action === 'redirect') return this.#quarantined(decisions, quarantine);
        continue;
      }
      if (rule.action === 'store') {
        if (!target.mailboxId) {
          decisions.push({
            ...base,
            ...decided('rule', rule.id, 'fail', null, `${detail}: no mailbox to store in`),
            delivery: null,
          });
        } else {
          const folder = rule.folder ?? 'INBOX';
          decisions.push({
            ...base,
            ...decided('rule', rule.id, 'store', `${recipient.address}/${folder}`, detail),
            delivery: { kind: 'mailbox', mailboxId: target.mailboxId, folder },
          });
        }
        return this.#quarantined(decisions, quarantine);
      }
      decisions.push({ ...base, ...decided('rule', rule.id, rule.action, null, detail), delivery: null });
      return decisions;
    }

    if (target.mailboxId && target.mailboxActive) {
      decisions.push({
        ...base,
        ...decided('mailbox', target.mailboxId, 'store', `${recipient.address}/INBOX`, null),
        delivery: { kind: 'mailbox', mailboxId: target.mailboxId, folder: 'INBOX' },
      });
    } else if (target.alias) {
      const visited = new Set([recipient.address]);
      for (const t of target.alias.targets) {
        decisions.push(
          ...(await this.#expand(base, t, 'alias', target.alias.id, 'forward', null, 0, visited)),
        );
      }
    } else if (target.catchAllTarget) {
      decisions.push(
        ...(await this.#expand(
          base,
          target.catchAllTarget,
          'catch_all',
          null,
          'forward',
          'catch-all',
          0,
          new Set([recipient.address]),
        )),
      );
    } else if (!decisions.length) {
      decisions.push({
        ...base,
        ...decided('none', null, 'fail', null, 'no mailbox, alias, rule or catch-all'),
        delivery: null,
      });
    }
    return this.#quarantined(decisions, quarantine);
  }

  /** Resolves a target address: a hosted mailbox is stored into, a hosted alias expanded, others forwarded. */
  async #expand(
    base: { recipient: string; domainId: string; domain: string },
    address: string,
    route: RouteKind,
    targetId: string | null,
    action: 'forward' | 'redirect',
    detail: string | null,
    depth: number,
    visited: Set<string>,
  ): Promise<RouteDecision[]> {
    const target = address.trim().toLowerCase();
    if (visited.has(target) || depth > MAX_ALIAS_DEPTH) {
      return [{ ...base, ...decided(route, targetId, 'loop', target, 'alias loop'), delivery: null }];
    }
    visited.add(target);
    const hosted = parseRecipient(target);
    const local =
      hosted && (await this.#lookups.localTarget(this.#organizationId, hosted.domain, hosted.localPart));
    if (!hosted || !local) {
      return [
        {
          ...base,
          ...decided(route, targetId, action, target, detail),
          delivery: { kind: 'forward', address: target, bounce: false },
        },
      ];
    }
    if (local.mailboxId && local.mailboxActive) {
      return [
        {
          ...base,
          ...decided(route, targetId, 'store', `${hosted.address}/INBOX`, detail),
          delivery: { kind: 'mailbox', mailboxId: local.mailboxId, folder: 'INBOX' },
        },
      ];
    }
    const next = local.alias ? local.alias.targets : local.catchAllTarget ? [local.catchAllTarget] : [];
    if (!next.length) {
      return [
        {
          ...base,
          ...decided(route, targetId, 'fail', target, 'hosted address with no mailbox'),
          delivery: null,
        },
      ];
    }
    const out: RouteDecision[] = [];
    for (const t of next)
      out.push(...(await this.#expand(base, t, route, targetId, action, detail, depth + 1, visited)));
    return out;
  }

  /** DMARC quarantine: hosted copies go to Junk, nothing is forwarded (it would spread a forgery). */
  #quarantined(decisions: RouteDecision[], quarantine: boolean): RouteDecision[] {
    if (!quarantine) return decisions;
    return decisions.map((d) => {
      if (d.delivery?.kind === 'mailbox') {
        return {
          ...d,
          action: 'quarantine',
          destination: d.destination?.replace(/\/[^/]+$/, '/Junk') ?? null,
          detail: 'DMARC failure: quarantined',
          delivery: { ...d.delivery, folder: 'Junk' },
        };
      }
      if (d.delivery?.kind === 'forward') {
        return { ...d, action: 'quarantine', detail: 'DMARC failure: not forwarded', delivery: null };
      }
      return d;
    });
  }

  #none(recipient: string, domainId: string, domain: string, detail: string): RouteDecision {
    return { recipient, domainId, domain, ...decided('none', null, 'fail', null, detail), delivery: null };
  }
}

function decided(
  route: RouteKind,
  targetId: string | null,
  action: RouteAction,
  destination: string | null,
  detail: string | null,
) {
  return { route, targetId, action, destination, detail };
}

export function matches(conditions: RuleCondition[], facts: MessageFacts): boolean {
  const sender = facts.sender.toLowerCase();
  return conditions.every((c) => {
    switch (c.field) {
      case 'sender':
        return c.op === 'equals' ? sender === c.value.toLowerCase() : sender.includes(c.value.toLowerCase());
      case 'sender_domain': {
        const domain = domainOf(sender);
        const wanted = c.value.toLowerCase();
        return domain === wanted || domain.endsWith(`.${wanted}`);
      }
      case 'subject':
        return facts.subject.toLowerCase().includes(c.value.toLowerCase());
      case 'size':
        return facts.size > c.value;
      case 'has_attachments':
        return facts.hasAttachments === c.value;
      default:
        return false;
    }
  });
}
