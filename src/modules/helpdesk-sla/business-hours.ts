// Business time: how much of a span lies in a calendar's working hours, and the instant a number of
// working minutes after another. A calendar is weekly hours per weekday in an IANA time zone plus
// holidays (local dates); a null calendar is 24/7. Wall times become instants through Intl (the zone data
// Node ships), so a DST change makes its day an hour shorter or longer, never shifts 09:00. Pure: no
// clock, no database.
import { addDays, localTime, zonedInstant } from '../../core/zoned-time.ts';

export interface BusinessInterval {
  /** 0 Sunday .. 6 Saturday */
  day: number;
  /** HH:MM, local */
  start: string;
  /** HH:MM after start; 24:00 is the end of the day */
  end: string;
}

export interface BusinessCalendar {
  timeZone: string;
  hours: BusinessInterval[];
  /** YYYY-MM-DD local dates with no working hours. */
  holidays: string[];
}

/** A calendar prepared for the arithmetic: intervals per weekday in minutes of the day, holidays as a set. */
export interface PreparedCalendar {
  timeZone: string;
  /** Per weekday, sorted [startMinute, endMinute) pairs. */
  days: [number, number][][];
  holidays: Set<string>;
}

const HHMM = /^([01]\d|2[0-4]):([0-5]\d)$/;

/** Minutes of the day of HH:MM (24:00 → 1440), or null when it is not a time. */
export function minuteOfDay(hhmm: string): number | null {
  const m = HHMM.exec(hhmm);
  if (!m) return null;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  return minutes > 1440 ? null : minutes;
}

/** What is wrong with the hours (overlaps, end before start, bad times), or null. */
export function hoursProblem(hours: BusinessInterval[]): string | null {
  const days: [number, number][][] = Array.from({ length: 7 }, () => []);
  for (const h of hours) {
    if (!Number.isInteger(h.day) || h.day < 0 || h.day > 6) return `day ${h.day} is not 0 (Sunday) to 6`;
    const start = minuteOfDay(h.start);
    const end = minuteOfDay(h.end);
    if (start === null || start === 1440) return `start "${h.start}" is not a time HH:MM`;
    if (end === null) return `end "${h.end}" is not a time HH:MM (24:00 ends the day)`;
    if (end <= start) return `day ${h.day}: ${h.end} is not after ${h.start}`;
    days[h.day]!.push([start, end]);
  }
  for (const [day, list] of days.entries()) {
    list.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < list.length; i++)
      if (list[i]![0] < list[i - 1]![1]) return `day ${day}: intervals overlap`;
  }
  if (!hours.length) return 'at least one interval of working hours is needed';
  return null;
}

export function prepareCalendar(calendar: BusinessCalendar): PreparedCalendar {
  const days: [number, number][][] = Array.from({ length: 7 }, () => []);
  for (const h of calendar.hours) days[h.day]!.push([minuteOfDay(h.start)!, minuteOfDay(h.end)!]);
  for (const list of days) list.sort((a, b) => a[0] - b[0]);
  return { timeZone: calendar.timeZone, days, holidays: new Set(calendar.holidays) };
}

/** A day no later than this many days ahead ends a search (a calendar whose every day is a holiday). */
const HORIZON_DAYS = 3660;

function weekdayOf(date: string): number {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y!, m! - 1, d!)).getUTCDay();
}

/** The working intervals of a local date as instants (ms), in order. */
function intervalsOn(date: string, cal: PreparedCalendar): [number, number][] {
  if (cal.holidays.has(date)) return [];
  const list = cal.days[weekdayOf(date)]!;
  if (!list.length) return [];
  return list.map(([s, e]) => [at(date, s, cal.timeZone), at(date, e, cal.timeZone)]);
}

function at(date: string, minute: number, timeZone: string): number {
  return zonedInstant(date, minute, timeZone).getTime();
}

/** Working milliseconds in [from, to); 0 when to is not after from. A null calendar counts every ms. */
export function businessMsBetween(from: Date, to: Date, cal: PreparedCalendar | null): number {
  const a = from.getTime();
  const b = to.getTime();
  if (b <= a) return 0;
  if (!cal) return b - a;
  let total = 0;
  // Start one local day early: an interval ending after midnight UTC may belong to yesterday's date.
  let date = addDays(localTime(from, cal.timeZone).date, -1);
  for (let i = 0; i < HORIZON_DAYS + 2; i++, date = addDays(date, 1)) {
    const intervals = intervalsOn(date, cal);
    for (const [s, e] of intervals) {
      if (s >= b) return total;
      const lo = Math.max(s, a);
      const hi = Math.min(e, b);
      if (hi > lo) total += hi - lo;
    }
    // The next local day begins after the end of this one; stop once it is past `to`.
    if (!intervals.length && at(date, 0, cal.timeZone) >= b) return total;
  }
  return total;
}

/**
 * The instant at which `ms` working milliseconds have passed since `from` (landing on the end of an
 * interval rather than the start of the next). 0 is `from` itself. Null when the calendar has no working
 * time within ten years (every day a holiday).
 */
export function addBusinessMs(from: Date, ms: number, cal: PreparedCalendar | null): Date | null {
  if (ms <= 0) return new Date(from.getTime());
  if (!cal) return new Date(from.getTime() + ms);
  const a = from.getTime();
  let left = ms;
  let date = addDays(localTime(from, cal.timeZone).date, -1);
  for (let i = 0; i < HORIZON_DAYS + 2; i++, date = addDays(date, 1)) {
    for (const [s, e] of intervalsOn(date, cal)) {
      const lo = Math.max(s, a);
      if (e <= lo) continue;
      if (e - lo >= left) return new Date(lo + left);
      left -= e - lo;
    }
  }
  return null;
}

/** Whether the instant lies in working hours. */
export function isBusinessTime(instant: Date, cal: PreparedCalendar | null): boolean {
  if (!cal) return true;
  const t = instant.getTime();
  const date = localTime(instant, cal.timeZone).date;
  for (const d of [addDays(date, -1), date])
    for (const [s, e] of intervalsOn(d, cal)) if (t >= s && t < e) return true;
  return false;
}
