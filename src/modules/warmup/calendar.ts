// Local days and hours in an enrolment's time zone: warmup plans each local day once and sends within
// the local hour window. Built on Intl (the ICU time zone data Node ships), so DST is right.

export interface LocalTime {
  /** YYYY-MM-DD */
  date: string;
  /** 0 Sunday .. 6 Saturday */
  weekday: number;
  hour: number;
  minute: number;
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

function parts(instant: Date, timeZone: string) {
  const out: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(instant)) out[p.type] = p.value;
  return out;
}

export function localTime(instant: Date, timeZone: string): LocalTime {
  const p = parts(instant, timeZone);
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    weekday: WEEKDAYS[p.weekday] ?? 0,
    hour: Number(p.hour),
    minute: Number(p.minute),
  };
}

/** How far the zone is ahead of UTC at this instant, in ms. */
function offsetAt(instant: Date, timeZone: string): number {
  const p = parts(instant, timeZone);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(instant.getTime() / 1000) * 1000;
}

/**
 * The instant of a local wall time. A time a DST change skips (in some zones midnight itself) lands at
 * the first instant after it that is on the same local date and not before the time asked.
 */
export function zonedInstant(date: string, hour: number, minute: number, timeZone: string): Date {
  const [y, m, d] = date.split('-').map(Number);
  const wall = Date.UTC(y, m - 1, d, hour, minute);
  let guess = wall - offsetAt(new Date(wall), timeZone);
  guess = wall - offsetAt(new Date(guess), timeZone);
  // Still before the wall time locally (it was skipped): step on until the local clock has passed it.
  const wanted = `${date} ${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
  for (let i = 0; i < 16 && localStamp(new Date(guess), timeZone) < wanted; i++) guess += 15 * 60_000;
  return new Date(guess);
}

function localStamp(instant: Date, timeZone: string): string {
  const t = localTime(instant, timeZone);
  return `${t.date} ${String(t.hour).padStart(2, '0')}:${String(t.minute).padStart(2, '0')}`;
}

export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** The instant the next local day begins. */
export function nextLocalMidnight(instant: Date, timeZone: string): Date {
  return zonedInstant(addDays(localTime(instant, timeZone).date, 1), 0, 0, timeZone);
}
