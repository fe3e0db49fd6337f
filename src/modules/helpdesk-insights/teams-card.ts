// The message a Teams Workflows incoming webhook takes ("Post to a channel when a webhook request is
// received"): `{"type": "message", "attachments": [{contentType: adaptive card, content: <card>}]}`, the
// card an Adaptive Card 1.4 (what Teams renders) of TextBlocks and a FactSet, with an "Open ticket" button.
// Every value is a string and every text is cut to a length Teams shows whole.
import type { TeamsEventType } from './tables.ts';

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';

/** The parts of a ticket every helpdesk event carries (its `ticket` snapshot). */
export interface TicketSnapshotLike {
  id: string;
  number: number;
  subject: string;
  status: string;
  priority: string;
  desk_id: string;
  requester_email?: string;
  assignee_id?: string | null;
  source?: string;
  due_at?: string | null;
}

export interface CardContext {
  deskName: string | null;
  assignee: string | null;
  /** Who made the change, when a person did. */
  actor: string | null;
  ticketUrl: string | null;
}

type Element =
  | {
      type: 'TextBlock';
      text: string;
      wrap: true;
      size?: 'Medium' | 'Large';
      weight?: 'Bolder';
      color?: string;
      isSubtle?: boolean;
      spacing?: 'None';
    }
  | { type: 'FactSet'; facts: { title: string; value: string }[] };

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** A string field of the event data, at any of these paths (the SLA and automation modules' payloads). */
function pick(data: Record<string, unknown>, ...paths: string[]): string | null {
  for (const path of paths) {
    let value: unknown = data;
    for (const key of path.split('.'))
      value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    if (typeof value === 'string' && value.trim()) return value.trim();
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  }
  return null;
}

/** A time as Teams readers expect it: UTC, to the minute. */
function when(value: string | null): string | null {
  if (!value) return null;
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? value : `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const ACCENT: Partial<Record<TeamsEventType | 'test', string>> = {
  'ticket.sla_warning': 'Warning',
  'ticket.sla_breached': 'Attention',
};

export function teamsCard(
  kind: TeamsEventType | 'test',
  data: Record<string, unknown>,
  ticket: TicketSnapshotLike | null,
  context: CardContext,
) {
  const tag = ticket ? `#${ticket.number}` : '';
  let title: string;
  let summary: string | null = null;
  const facts: { title: string; value: string | null }[] = [];
  switch (kind) {
    case 'ticket.created':
      title = `New ticket ${tag}: ${ticket?.subject ?? ''}`;
      summary = ticket?.requester_email ? `From ${ticket.requester_email}` : null;
      break;
    case 'ticket.assigned':
      title = `Ticket ${tag} assigned to ${context.assignee ?? 'an agent'}`;
      summary = ticket?.subject ?? null;
      if (context.actor) facts.push({ title: 'Assigned by', value: context.actor });
      break;
    case 'ticket.sla_warning':
    case 'ticket.sla_breached': {
      const target = pick(data, 'target', 'sla.target', 'metric');
      const label = kind === 'ticket.sla_warning' ? 'SLA warning' : 'SLA breached';
      title = `${label} on ticket ${tag}${target ? ` (${target.replaceAll('_', ' ')})` : ''}`;
      summary = ticket?.subject ?? null;
      facts.push({ title: 'Policy', value: pick(data, 'policy_name', 'policy.name', 'sla.policy_name') });
      facts.push({ title: 'Target', value: target });
      facts.push({
        title: kind === 'ticket.sla_warning' ? 'Due' : 'Was due',
        value: when(pick(data, 'due_at', 'due', 'deadline', 'sla.due_at')),
      });
      const steps = (data.escalation as { actions?: unknown } | undefined)?.actions;
      if (Array.isArray(steps) && steps.length)
        facts.push({
          title: 'Escalation',
          value: steps.map((s) => String(s).replaceAll('_', ' ')).join(', '),
        });
      break;
    }
    case 'ticket.automation_notify': {
      const rule = pick(data, 'rule_name', 'rule.name');
      title = `${rule ?? 'Automation'}: ticket ${tag}`;
      summary = pick(data, 'message', 'text') ?? ticket?.subject ?? null;
      if (summary !== ticket?.subject && ticket) facts.push({ title: 'Subject', value: ticket.subject });
      break;
    }
    case 'test':
      title = 'Test notification from Mailroom';
      summary = pick(data, 'message') ?? 'This channel receives helpdesk notifications.';
      break;
  }
  if (ticket) {
    facts.push(
      { title: 'Desk', value: context.deskName },
      { title: 'Status', value: ticket.status },
      { title: 'Priority', value: ticket.priority },
    );
    if (kind !== 'ticket.assigned')
      facts.push({ title: 'Assignee', value: context.assignee ?? 'Unassigned' });
    if (kind !== 'ticket.created' && ticket.requester_email)
      facts.push({ title: 'Requester', value: ticket.requester_email });
  }
  const body: Element[] = [
    {
      type: 'TextBlock',
      text: cut(title, 300),
      wrap: true,
      size: 'Medium',
      weight: 'Bolder',
      ...(ACCENT[kind] ? { color: ACCENT[kind] } : {}),
    },
  ];
  if (summary)
    body.push({ type: 'TextBlock', text: cut(summary, 2000), wrap: true, isSubtle: true, spacing: 'None' });
  const shown = facts.filter(
    (f): f is { title: string; value: string } => typeof f.value === 'string' && f.value !== '',
  );
  if (shown.length)
    body.push({ type: 'FactSet', facts: shown.map((f) => ({ title: f.title, value: cut(f.value, 500) })) });
  const actions = context.ticketUrl
    ? [{ type: 'Action.OpenUrl', title: 'Open ticket', url: context.ticketUrl }]
    : [];
  return {
    type: 'message',
    attachments: [
      {
        contentType: ADAPTIVE_CARD_CONTENT_TYPE,
        contentUrl: null,
        content: {
          $schema: ADAPTIVE_CARD_SCHEMA,
          type: 'AdaptiveCard',
          version: '1.4',
          body,
          ...(actions.length ? { actions } : {}),
          msteams: { width: 'Full' },
        },
      },
    ],
  };
}
