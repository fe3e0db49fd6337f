// Send windows: days of the week and an interval of local time, in an IANA zone. Built on Intl (the ICU
// zone data Node ships), so daylight saving changes move the window with the local clock.

export interface SendWindow {
  timeZone: string;
  /** 0 Sunday .. 6 Saturday. */
  days: number[];
  /** Minutes after local midnight: start inclusive, end exclusive (1440 = the day's end). */
  start: number;
  end: number;
}

export interface LocalTime {
  /** YYYY-MM-DD */
  date: string;
  weekday: number;
  /** Minutes after local midnight. */
  minutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isTimeZone(name: string): boolean {
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

function parts(instant: Date, timeZone: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(instant)) out[p.type] = p.value;
  return out;
}

export function localTime(instant: Date, timeZone: string): LocalTime {
  const p = parts(instant, timeZone);
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    weekday: WEEKDAYS[p.weekday] ?? 0,
    minutes: Number(p.hour) * 60 + Number(p.minute),
  };
}

function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/**
 * The first instant at which the local clock shows `minutes` on `date` or later (a time that a DST
 * change skips lands just after the gap).
 */
export function zonedInstant(date: string, minutes: number, timeZone: string): Date {
  if (minutes >= 1440) return zonedInstant(addDays(date, 1), 0, timeZone);
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d, 0, minutes);
  const offset = (at: number) => {
    const p = parts(new Date(at), timeZone);
    return (
      Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(at / 1000) * 1000
    );
  };
  let guess = wall - offset(wall);
  guess = wall - offset(guess);
  const before = (at: number) => {
    const t = localTime(new Date(at), timeZone);
    return t.date < date || (t.date === date && t.minutes < minutes);
  };
  for (let i = 0; i < 16 && before(guess); i++) guess += 15 * 60_000;
  return new Date(guess);
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
