// Planning warmup: when an enrolment's local day begins, its quota for the day (from its ramp) becomes
// that many send times, at random within its hour window, kept on the enrolment as one compact array
// (10,000 mailboxes at 40 a day is one row each, not 400,000). When a time comes, the opening is made:
// a partner from the pool (those on another domain than the sender first) and a template.
import { randomBytes } from 'node:crypto';
import { newId } from '../../core/ids.ts';
import { localTime, nextLocalMidnight, zonedInstant } from '../../core/zoned-time.ts';
import { pick } from './content.ts';
import { dailyQuota } from './ramps.ts';
import type { PlannedDay, PoolMember } from './store.ts';
import type { EnrollmentRow } from './tables.ts';

/** A message row to write: an opening made when its time came, or a reply planned on arrival. */
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
  provider: string;
}

/** The per-message token the receiving side looks for (X-Entity-Ref-ID): 128 random bits. */
export const newToken = () => randomBytes(16).toString('base64url');

/**
 * Today's send times for an enrolment whose local day began (none on days off or without partners).
 * A day already planned keeps its plan (a changed window takes effect the next day). A day planned
 * again after a resume does not move the ramp a second time, and `openedToday` (openings already made
 * today) count against its quota.
 */
export function planDay(
  enrollment: EnrollmentRow,
  hasPartners: boolean,
  now: Date,
  random: () => number = Math.random,
  openedToday = 0,
): PlannedDay {
  const tz = enrollment.timeZone;
  const local = localTime(now, tz);
  const day: PlannedDay = {
    id: enrollment.id,
    warmDays: enrollment.warmDays,
    countedOn: enrollment.countedOn,
    plannedOn: local.date,
    nextPlanAt: nextLocalMidnight(now, tz),
    planTimes: enrollment.plannedOn === local.date ? enrollment.planTimes : [],
  };
  const sendingDay =
    enrollment.plannedOn !== local.date &&
    enrollment.weekdays.includes(local.weekday) &&
    local.hour < enrollment.endHour;
  if (!sendingDay || !hasPartners) return day;
  const start = Math.max(now.getTime(), zonedInstant(local.date, enrollment.startHour * 60, tz).getTime());
  const end = zonedInstant(local.date, enrollment.endHour * 60, tz).getTime();
  if (end <= start) return day;
  if (enrollment.countedOn !== local.date) {
    day.warmDays += 1;
    day.countedOn = local.date;
  }
  const quota = Math.max(0, dailyQuota(enrollment.ramp, day.warmDays, enrollment.slowed) - openedToday);
  day.planTimes = Array.from({ length: quota }, () => start + Math.floor(random() * (end - start))).sort(
    (a, b) => a - b,
  );
  return day;
}

/** The openings whose times came: each to a partner of the pool, with a random opening template. */
export function openings(
  enrollment: Pick<EnrollmentRow, 'id' | 'organizationId' | 'address' | 'timeZone'>,
  times: number[],
  members: PoolMember[],
  templates: string[],
  random: () => number = Math.random,
): PlannedMessage[] {
  const isPartner = (m: PoolMember) => m.id !== enrollment.id && m.address !== enrollment.address;
  const partners = choosePartners(enrollment.address, members, isPartner, times.length, random);
  if (!partners.length) return [];
  return times.map((t, i) => {
    const recipient = partners[i % partners.length];
    const id = newId();
    const dueAt = new Date(t);
    return {
      id,
      organization_id: enrollment.organizationId,
      enrollment_id: enrollment.id,
      recipient_enrollment_id: recipient.id,
      token: newToken(),
      thread_id: id,
      parent_id: null,
      depth: 0,
      template: pick(templates, random),
      day: localTime(dueAt, enrollment.timeZone).date,
      due_at: dueAt,
      provider: recipient.provider,
    };
  });
}

const SMALL_POOL = 64;

/**
 * Up to `count` partners, those on another domain than the sender first. A small pool is shuffled
 * whole; in a large one partners are drawn at random (not a sort of the whole pool per sender).
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
