// Send windows: days of the week and an interval of local time, in an IANA zone (core/zoned-time.ts), so
// daylight saving changes move the window with the local clock.
import { addDays, localTime, zonedInstant } from '../../core/zoned-time.ts';

export interface SendWindow {
  timeZone: string;
  /** 0 Sunday .. 6 Saturday. */
  days: number[];
  /** Minutes after local midnight: start inclusive, end exclusive (1440 = the day's end). */
  start: number;
  end: number;
}

export function isOpen(instant: Date, w: SendWindow): boolean {
  const t = localTime(instant, w.timeZone);
  return w.days.includes(t.weekday) && t.minutes >= w.start && t.minutes < w.end;
}

/** `instant` when the window is open then, else the next instant it opens (null: it never does). */
export function nextOpening(instant: Date, w: SendWindow): Date | null {
  if (!w.days.length || w.start >= w.end) return null;
  if (isOpen(instant, w)) return instant;
  const today = localTime(instant, w.timeZone);
  for (let i = 0; i <= 7; i++) {
    const date = addDays(today.date, i);
    const opens = zonedInstant(date, w.start, w.timeZone);
    if (opens.getTime() <= instant.getTime()) continue;
    if (w.days.includes(localTime(opens, w.timeZone).weekday)) return opens;
  }
  return null;
}

/** When the window open at `instant` closes. */
export function closing(instant: Date, w: SendWindow): Date {
  return zonedInstant(localTime(instant, w.timeZone).date, w.end, w.timeZone);
}

/** The local date of `instant` and the instant the next local day begins. */
export function localDay(instant: Date, timeZone: string): { date: string; ends: Date } {
  const { date } = localTime(instant, timeZone);
  return { date, ends: zonedInstant(addDays(date, 1), 0, timeZone) };
}
