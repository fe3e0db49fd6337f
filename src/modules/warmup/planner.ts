// Planning a warmup day: when an enrolment's local day begins, its quota for the day (from its ramp)
// becomes that many planned messages to other members of its pool, at random times within its hour
// window, each with a random opening template. Recipients on other domains come first, so a pool on
// several domains warms the paths between them.
import { randomBytes } from 'node:crypto';
import { newId } from '../../core/ids.ts';
import { localTime, nextLocalMidnight, zonedInstant } from './calendar.ts';
import { pick } from './content.ts';
import { dailyQuota } from './ramps.ts';
import type { PlannedDay, PoolMember } from './store.ts';
import type { EnrollmentRow } from './tables.ts';

export interface PlannedMessage {
  id: string;
  organization_id: string;
  enrollment_id: string;
  recipient_enrollment_id: string;
  token: string;
  thread_id: string;
  parent_id: string | null;
  depth: number;
  template: string;
  day: string;
  due_at: Date;
  status: 'planned';
  provider: string;
  subject: null;
  references_header: null;
}

export interface DayPlan {
  day: PlannedDay;
  messages: PlannedMessage[];
}

/** The per-message token the receiving side looks for (X-Entity-Ref-ID): 128 random bits. */
export const newToken = () => randomBytes(16).toString('base64url');

export function planDay(
  enrollment: EnrollmentRow,
  members: PoolMember[],
  openings: string[],
  now: Date,
  random: () => number = Math.random,
): DayPlan {
  const tz = enrollment.timeZone;
  const local = localTime(now, tz);
  const day: PlannedDay = {
    id: enrollment.id,
    warmDays: enrollment.warmDays,
    plannedOn: local.date,
    nextPlanAt: nextLocalMidnight(now, tz),
  };
  const sendingDay =
    enrollment.plannedOn !== local.date &&
    enrollment.weekdays.includes(local.weekday) &&
    local.hour < enrollment.endHour;
  const isPartner = (m: PoolMember) => m.id !== enrollment.id && m.address !== enrollment.address;
  if (!sendingDay || !members.some(isPartner)) return { day, messages: [] };

  const quota = dailyQuota(enrollment.ramp, enrollment.warmDays + 1, enrollment.slowed);
  const start = Math.max(now.getTime(), zonedInstant(local.date, enrollment.startHour, 0, tz).getTime());
  const end = zonedInstant(local.date, enrollment.endHour, 0, tz).getTime();
  if (end <= start) return { day, messages: [] };
  day.warmDays += 1;

  const recipients = choosePartners(enrollment.address, members, isPartner, quota, random);
  const times = Array.from({ length: quota }, () => start + Math.floor(random() * (end - start))).sort(
    (a, b) => a - b,
  );
  const messages = times.map((t, i): PlannedMessage => {
    const recipient = recipients[i % recipients.length];
    const id = newId();
    return {
      id,
      organization_id: enrollment.organizationId,
      enrollment_id: enrollment.id,
      recipient_enrollment_id: recipient.id,
      token: newToken(),
      thread_id: id,
      parent_id: null,
      depth: 0,
      template: pick(openings, random),
      day: local.date,
      due_at: new Date(t),
      status: 'planned',
      provider: recipient.provider,
      subject: null,
      references_header: null,
    };
  });
  return { day, messages };
}

const SMALL_POOL = 64;

/**
 * Up to `count` partners, those on another domain than the sender first. A small pool is shuffled
 * whole; in a large one partners are drawn at random (planning 10,000 members must not sort 10,000
 * lists of 10,000).
 */
function choosePartners(
  address: string,
  members: PoolMember[],
  isPartner: (m: PoolMember) => boolean,
  count: number,
  random: () => number,
): PoolMember[] {
  const domain = address.slice(address.lastIndexOf('@') + 1);
  const sameDomain = (m: PoolMember) => m.address.endsWith(`@${domain}`);
  if (members.length <= SMALL_POOL) {
    return members
      .filter(isPartner)
      .map((p) => ({ p, key: (sameDomain(p) ? 1 : 0) + random() }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.p);
  }
  const chosen = new Map<string, PoolMember>();
  for (let tries = 0; chosen.size < count && tries < count * 8; tries++) {
    const m = members[Math.floor(random() * members.length)];
    if (!isPartner(m) || chosen.has(m.id) || (sameDomain(m) && tries < count * 4)) continue;
    chosen.set(m.id, m);
  }
  if (!chosen.size) {
    const any = members.find(isPartner);
    if (any) chosen.set(any.id, any);
  }
  return [...chosen.values()];
}
