// Wall clocks in IANA time zones, on Intl (the ICU zone data Node ships): an instant's local date,
// weekday and time, and the instant of a local wall time, right across daylight saving changes. Warmup
// days, SLA business hours, SMS quiet hours and campaign send windows all count on it.

export interface LocalTime {
  /** YYYY-MM-DD */
  date: string;
  /** 0 Sunday .. 6 Saturday */
  weekday: number;
  hour: number;
  minute: number;
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

/** Whether Intl knows the zone (an IANA name such as Europe/Berlin, or UTC). */
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
  const hour = Number(p.hour);
  const minute = Number(p.minute);
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    weekday: WEEKDAYS[p.weekday] ?? 0,
    hour,
    minute,
    minutes: hour * 60 + minute,
  };
}

export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** How far the zone is ahead of UTC at this instant, in ms. */
function offsetAt(at: number, timeZone: string): number {
  const p = parts(new Date(at), timeZone);
  return (
    Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(at / 1000) * 1000
  );
}

/**
 * The first instant at which the local clock shows `minutes` after midnight on `date`, or later: a time
 * a DST change skips (in some zones midnight itself) lands just after the gap. 1440 is the next midnight.
 */
export function zonedInstant(date: string, minutes: number, timeZone: string): Date {
  if (minutes >= 1440) return zonedInstant(addDays(date, 1), minutes - 1440, timeZone);
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d, 0, minutes);
  let guess = wall - offsetAt(wall, timeZone);
  guess = wall - offsetAt(guess, timeZone);
  const before = (at: number) => {
    const t = localTime(new Date(at), timeZone);
    return t.date < date || (t.date === date && t.minutes < minutes);
  };
  for (let i = 0; i < 16 && before(guess); i++) guess += 15 * 60_000;
  return new Date(guess);
}

/** The instant the next local day begins. */
export function nextLocalMidnight(instant: Date, timeZone: string): Date {
  return zonedInstant(addDays(localTime(instant, timeZone).date, 1), 0, timeZone);
}
