// Date expressions of a mail request, as a grammar: "yesterday", "last week", "the past 30 days",
// "on Monday", "in March 2026", "March 3rd", "2026-03-03", "since May", "between June 1 and June 10".
// Rules produce resolvers; a resolver turns the expression into local dates of the user's time zone
// relative to their "now", and only at the end do local midnights become UTC instants (core/zoned-time).
// Weeks start on Monday. "this week/month/year" is the whole calendar period; "last N days", "the past
// month" and "recently" (14 days) are rolling windows that start at a local midnight and stay open.
import { addDays, localTime, zonedInstant } from '../../../core/zoned-time.ts';
import {
  alt,
  kind,
  type Match,
  map,
  opt,
  phrase,
  punct,
  type Rule,
  seq,
  token,
  word,
} from './combinators.ts';
import type { Token } from './tokens.ts';

export interface Calendar {
  now: Date;
  timeZone: string;
  /** The user's local date at `now`, YYYY-MM-DD. */
  today: string;
}

/** A local wall time (midnight unless `minutes` says otherwise) or an exact instant. */
export type Bound = { date: string; minutes?: number } | { instant: Date };

/** [start, end); no end means "until now". */
export interface Period {
  start: Bound;
  end?: Bound;
}

export interface DateRange {
  after?: Bound;
  before?: Bound;
}

/**
 * How to place an expression that names no year or week: the latest occurrence not after today (what a
 * mail search means by "in March" or "on Monday"), the current year ("before June 20"), or the first
 * occurrence on or after a date (the end of "between December and February").
 */
type Bias = { kind: 'past' } | { kind: 'current' } | { kind: 'onOrAfter'; date: string };
type PeriodRef = (cal: Calendar, bias: Bias) => Period | null;

export interface DateMatch {
  resolve: (cal: Calendar) => DateRange | null;
  /** Token index where the expression proper begins (after "on", "in", "from" and the like). */
  textStart: number;
}

export const RECENT_DAYS = 14;

export function calendarFor(now: Date, timeZone: string): Calendar {
  return { now, timeZone, today: localTime(now, timeZone).date };
}

// The instant of a local wall time depends only on the date, the minutes and the zone, and requests
// keep asking for the same few days: remember them (a bounded map, cleared when full).
const instants = new Map<string, string>();
const MAX_REMEMBERED = 4096;

export function boundToIso(bound: Bound, cal: Calendar): string {
  if ('instant' in bound) return bound.instant.toISOString();
  const key = `${cal.timeZone} ${bound.date} ${bound.minutes ?? 0}`;
  let iso = instants.get(key);
  if (iso === undefined) {
    iso = zonedInstant(bound.date, bound.minutes ?? 0, cal.timeZone).toISOString();
    if (instants.size >= MAX_REMEMBERED) instants.clear();
    instants.set(key, iso);
  }
  return iso;
}

// ---- calendar arithmetic on YYYY-MM-DD strings

function ymd(date: string): [number, number, number] {
  const [y, m, d] = date.split('-').map(Number);
  return [y, m, d];
}

function isoDate(y: number, m: number, d: number): string {
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

function weekdayOf(date: string): number {
  const [y, m, d] = ymd(date);
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay();
}

function addMonths(date: string, months: number): string {
  const [y, m, d] = ymd(date);
  const index = y * 12 + (m - 1) + months;
  const ny = Math.floor(index / 12);
  const nm = (index % 12) + 1;
  return isoDate(ny, nm, Math.min(d, daysInMonth(ny, nm)));
}

function mondayOf(date: string): string {
  return addDays(date, -((weekdayOf(date) + 6) % 7));
}

function validDate(y: number, m: number, d: number): string | null {
  if (m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return null;
  return isoDate(y, m, d);
}

const oneDay = (date: string): Period => ({ start: { date }, end: { date: addDays(date, 1) } });
const span = (from: string, to: string): Period => ({ start: { date: from }, end: { date: to } });

type CalendarUnit = 'week' | 'month' | 'quarter' | 'year' | 'weekend';

/** The calendar period of `unit` that contains `today`, moved `shift` periods. */
function calendarPeriod(unit: CalendarUnit, today: string, shift: number): Period {
  const [y, m] = ymd(today);
  switch (unit) {
    case 'week': {
      const monday = addDays(mondayOf(today), 7 * shift);
      return span(monday, addDays(monday, 7));
    }
    case 'weekend': {
      const saturday = addDays(mondayOf(today), 5 + 7 * shift);
      return span(saturday, addDays(saturday, 2));
    }
    case 'month': {
      const first = addMonths(isoDate(y, m, 1), shift);
      return span(first, addMonths(first, 1));
    }
    case 'quarter': {
      const first = addMonths(isoDate(y, m - ((m - 1) % 3), 1), 3 * shift);
      return span(first, addMonths(first, 3));
    }
    case 'year':
      return span(isoDate(y + shift, 1, 1), isoDate(y + shift + 1, 1, 1));
  }
}

// ---- vocabulary

const WEEKDAYS: Record<string, number> = {
  sunday: 0,
  monday: 1,
  mon: 1,
  tuesday: 2,
  tue: 2,
  tues: 2,
  wednesday: 3,
  wed: 3,
  thursday: 4,
  thu: 4,
  thur: 4,
  thurs: 4,
  friday: 5,
  fri: 5,
  saturday: 6,
};

const MONTHS: Record<string, number> = {
  january: 1,
  jan: 1,
  february: 2,
  feb: 2,
  march: 3,
  mar: 3,
  april: 4,
  apr: 4,
  may: 5,
  june: 6,
  jun: 6,
  july: 7,
  jul: 7,
  august: 8,
  aug: 8,
  september: 9,
  sep: 9,
  sept: 9,
  october: 10,
  oct: 10,
  november: 11,
  nov: 11,
  december: 12,
  dec: 12,
};

const NUMBER_WORDS: Record<string, number> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  fifteen: 15,
  twenty: 20,
  thirty: 30,
  sixty: 60,
  ninety: 90,
};

/** Every word that can take part in a date expression; other rules use it to tell dates from names. */
export const DATE_WORDS = new Set([
  ...Object.keys(WEEKDAYS),
  ...Object.keys(MONTHS),
  ...['today', 'yesterday', 'tomorrow', 'tonight', 'morning', 'afternoon', 'evening', 'night', 'ago'],
  ...['day', 'days', 'week', 'weeks', 'weekend', 'weekends', 'fortnight', 'month', 'months', 'quarter'],
  ...['quarters', 'year', 'years', 'hour', 'hours', 'recently', 'lately', 'recent', 'since', 'between'],
  ...['before', 'after', 'until', 'till', 'earlier', 'last', 'past', 'previous', 'next', 'this', 'current'],
]);

// ---- building blocks

type Unit = 'hour' | 'day' | 'week' | 'month' | 'year';

const UNITS: Record<string, Unit> = {
  hour: 'hour',
  hours: 'hour',
  day: 'day',
  days: 'day',
  week: 'week',
  weeks: 'week',
  month: 'month',
  months: 'month',
  year: 'year',
  years: 'year',
};

const unit: Rule<Unit> = map(word(...Object.keys(UNITS)), (w) => UNITS[w]);
const fortnight: Rule<{ n: number; unit: Unit }> = map(word('fortnight'), () => ({ n: 2, unit: 'week' }));

const count: Rule<number> = alt(
  map(kind('number'), (t) => (t.value! > 0 && t.value! <= 1000 ? t.value! : null)),
  map(word(...Object.keys(NUMBER_WORDS)), (w) => NUMBER_WORDS[w]),
  map(seq(opt(word('a')), word('couple'), opt(word('of'))), () => 2),
  map(seq(opt(word('a')), word('few')), () => 3),
);

const dayNumber: Rule<number> = map(alt(kind('number'), kind('ordinal')), (t) =>
  t.value! >= 1 && t.value! <= 31 ? t.value! : null,
);

const yearNumber: Rule<number> = map(kind('number'), (t) =>
  t.text.length === 4 && t.value! >= 1970 && t.value! <= 2100 ? t.value! : null,
);

const weekdayName: Rule<number> = map(
  token((t) => t.kind === 'word' && t.lower in WEEKDAYS),
  (t) => WEEKDAYS[t.lower],
);

/** A month name; "may" and "march" in lower case only where a date is expected, since both are verbs. */
function monthName(strict: boolean): Rule<number> {
  return map(
    token((t) => t.kind === 'word' && t.lower in MONTHS),
    (t) => (strict && (t.lower === 'may' || t.lower === 'march') && !t.capitalized ? null : MONTHS[t.lower]),
  );
}

// ---- periods

function latestMonthDay(cal: Calendar, bias: Bias, m: number, d: number, year?: number): Period | null {
  const [ty] = ymd(cal.today);
  if (year !== undefined) {
    const date = validDate(year, m, d);
    return date ? oneDay(date) : null;
  }
  let y = ty;
  if (bias.kind === 'onOrAfter') {
    y = ymd(bias.date)[0];
    if (isoDate(y, m, d) < bias.date) y += 1;
  } else if (bias.kind === 'past' && isoDate(y, m, d) > cal.today) y -= 1;
  // 29 February in a year without one: the last year that had it.
  for (let k = 0; k < 8; k++) {
    const date = validDate(y, m, d);
    if (date) return oneDay(date);
    y += bias.kind === 'onOrAfter' ? 1 : -1;
  }
  return null;
}

function monthPeriod(cal: Calendar, bias: Bias, m: number, year?: number, shiftYears = 0): Period {
  const [ty] = ymd(cal.today);
  let y = year ?? ty;
  if (year === undefined) {
    if (bias.kind === 'onOrAfter') {
      y = ymd(bias.date)[0];
      if (isoDate(y, m, daysInMonth(y, m)) < bias.date) y += 1;
    } else if (bias.kind === 'past' && isoDate(y, m, 1) > cal.today) y -= 1;
  }
  y += shiftYears;
  const first = isoDate(y, m, 1);
  return span(first, addMonths(first, 1));
}

function weekdayPeriod(cal: Calendar, bias: Bias, weekday: number, which?: string): Period {
  const todayWeekday = weekdayOf(cal.today);
  if (which === 'this') return oneDay(addDays(mondayOf(cal.today), (weekday + 6) % 7));
  if (which === 'next') return oneDay(addDays(cal.today, ((weekday - todayWeekday + 6) % 7) + 1));
  if (which === 'last' || which === 'past' || which === 'previous')
    return oneDay(addDays(cal.today, -(((todayWeekday - weekday + 6) % 7) + 1)));
  if (bias.kind === 'onOrAfter') {
    const from = weekdayOf(bias.date);
    return oneDay(addDays(bias.date, (weekday - from + 7) % 7));
  }
  return oneDay(addDays(cal.today, -((todayWeekday - weekday + 7) % 7)));
}

function rolling(cal: Calendar, n: number, u: Unit): Period {
  switch (u) {
    case 'hour':
      return { start: { instant: new Date(cal.now.getTime() - n * 3_600_000) } };
    case 'day':
      return { start: { date: addDays(cal.today, -n) } };
    case 'week':
      return { start: { date: addDays(cal.today, -7 * n) } };
    case 'month':
      return { start: { date: addMonths(cal.today, -n) } };
    case 'year':
      return { start: { date: addMonths(cal.today, -12 * n) } };
  }
}

function ago(cal: Calendar, n: number, u: Unit): Period | null {
  switch (u) {
    case 'hour':
      return null;
    case 'day':
      return oneDay(addDays(cal.today, -n));
    case 'week':
      return calendarPeriod('week', addDays(cal.today, -7 * n), 0);
    case 'month':
      return calendarPeriod('month', addMonths(cal.today, -n), 0);
    case 'year':
      return calendarPeriod('year', addMonths(cal.today, -12 * n), 0);
  }
}

const PARTS_OF_DAY: Record<string, [number, number]> = {
  morning: [0, 720],
  afternoon: [720, 1080],
  evening: [1080, 1440],
};

const relativeDay: Rule<PeriodRef> = alt(
  map(seq(opt(word('earlier', 'later')), word('today')), () => (cal) => oneDay(cal.today)),
  map(word('yesterday'), () => (cal) => oneDay(addDays(cal.today, -1))),
  map(word('tomorrow'), () => (cal) => oneDay(addDays(cal.today, 1))),
  map(
    seq(word('the'), word('day'), word('before'), word('yesterday')),
    () => (cal) => oneDay(addDays(cal.today, -2)),
  ),
  map(
    seq(word('this', 'yesterday', 'today'), word('morning', 'afternoon', 'evening')),
    ([which, part]) =>
      (cal) => {
        const date = which === 'yesterday' ? addDays(cal.today, -1) : cal.today;
        const [from, to] = PARTS_OF_DAY[part];
        return { start: { date, minutes: from }, end: { date, minutes: to } };
      },
  ),
  map(seq(word('last'), word('night')), () => (cal) => ({
    start: { date: addDays(cal.today, -1), minutes: 1080 },
    end: { date: cal.today, minutes: 360 },
  })),
  map(word('tonight'), () => (cal) => ({
    start: { date: cal.today, minutes: 1080 },
    end: { date: addDays(cal.today, 1) },
  })),
);

const calendarUnit: Rule<CalendarUnit> = map(
  word('week', 'weeks', 'month', 'months', 'quarter', 'year', 'years', 'weekend'),
  (w) => (w.endsWith('s') ? w.slice(0, -1) : w) as CalendarUnit,
);

// "this week", "earlier this month", "last year", "the previous quarter", "next week"
const thisOrLast: Rule<PeriodRef> = map(
  seq(
    opt(word('earlier', 'later')),
    opt(word('the')),
    word('this', 'current', 'last', 'previous', 'prior', 'next'),
    calendarUnit,
  ),
  ([, , which, u]) => {
    const shift = which === 'this' || which === 'current' ? 0 : which === 'next' ? 1 : -1;
    return (cal) => calendarPeriod(u, cal.today, shift);
  },
);

// "the last 7 days", "past 30 days", "the past week", "the last month", "last couple of days", "past fortnight"
const rollingWindow: Rule<PeriodRef> = alt(
  map(
    seq(
      word('last', 'past', 'previous'),
      alt(
        seq(count, unit),
        map(fortnight, (f) => [f.n, f.unit]),
      ),
    ),
    ([, [n, u]]) =>
      (cal) =>
        rolling(cal, n as number, u as Unit),
  ),
  map(
    seq(
      word('the'),
      word('last', 'past', 'previous'),
      alt(
        seq(count, unit),
        map(fortnight, (f) => [f.n, f.unit]),
      ),
    ),
    ([, , [n, u]]) =>
      (cal) =>
        rolling(cal, n as number, u as Unit),
  ),
  map(
    seq(opt(word('the')), word('past'), unit),
    ([, , u]) =>
      (cal) =>
        rolling(cal, 1, u),
  ),
  map(
    seq(word('the'), word('last'), unit),
    ([, , u]) =>
      (cal) =>
        rolling(cal, 1, u),
  ),
  map(seq(opt(word('the')), word('past'), fortnight), () => (cal) => rolling(cal, 2, 'week')),
);

// "3 days ago", "a week ago", "two months ago"
const agoRule: Rule<PeriodRef> = map(
  seq(
    alt(
      count,
      map(word('a', 'an'), () => 1),
    ),
    alt(
      unit,
      map(fortnight, () => 'fortnight' as const),
    ),
    word('ago'),
  ),
  ([n, u]) =>
    (cal) =>
      u === 'fortnight' ? ago(cal, 2 * n, 'week') : ago(cal, n, u),
);

const recent: Rule<PeriodRef> = map(
  alt(word('recently', 'lately', 'recent'), phrase('of late')),
  () => (cal) => rolling(cal, RECENT_DAYS, 'day'),
);

// "Monday", "last Friday", "this Tuesday", "next Thursday"
const weekday: Rule<PeriodRef> = map(
  seq(opt(word('last', 'past', 'previous', 'this', 'next')), weekdayName),
  ([which, wd]) =>
    (cal, bias) =>
      weekdayPeriod(cal, bias, wd, which),
);

const yearSuffix: Rule<number> = map(seq(opt(punct(',')), yearNumber), ([, y]) => y);

// "March", "March 2026", "last March", "March 3rd", "March 3, 2026", "3 March", "the 3rd of March", ISO dates
function monthAndDay(strict: boolean): Rule<PeriodRef> {
  return alt(
    map(
      seq(opt(word('last', 'this')), monthName(strict), opt(yearSuffix)),
      ([which, m, y]) =>
        (cal, bias) => {
          if (which === 'last' && y === undefined) {
            // The latest such month that has already ended, or is under way but is not this one.
            const candidate = monthPeriod(cal, { kind: 'past' }, m);
            const [ty, tm] = ymd(cal.today);
            return m === tm ? monthPeriod(cal, bias, m, ty - 1) : candidate;
          }
          return monthPeriod(cal, bias, m, y);
        },
    ),
    map(
      seq(monthName(false), opt(word('the')), dayNumber, opt(yearSuffix)),
      ([m, , d, y]) =>
        (cal, bias) =>
          latestMonthDay(cal, bias, m, d, y),
    ),
    map(
      seq(opt(word('the')), dayNumber, opt(word('of')), monthName(false), opt(yearSuffix)),
      ([, d, , m, y]) =>
        (cal, bias) =>
          latestMonthDay(cal, bias, m, d, y),
    ),
    map(kind('isoDate'), (t) => {
      const [y, m, d] = ymd(t.text);
      const date = validDate(y, m, d);
      return date ? () => oneDay(date) : null;
    }),
  );
}

const yearOnly: Rule<PeriodRef> = map(yearNumber, (y) => () => calendarPeriod('year', isoDate(y, 1, 1), 0));

// "the weekend": this one while it lasts, else the one before
const theWeekend: Rule<PeriodRef> = map(seq(word('the'), word('weekend')), () => (cal) => {
  const weekday = weekdayOf(cal.today);
  return calendarPeriod('weekend', cal.today, weekday === 6 || weekday === 0 ? 0 : -1);
});

// "12/05", "12/05/2026": day first, or month first in the Americas' zones (US custom); a number above
// 12 settles the order either way.
const numericDate: Rule<PeriodRef> = map(kind('numericDate'), (t) => {
  const [a, b, c] = t.text.split('/').map(Number);
  const year = c === undefined ? undefined : c < 100 ? 2000 + c : c;
  return (cal, bias) => {
    const monthFirst = a > 12 ? false : b > 12 ? true : cal.timeZone.startsWith('America/');
    const [m, d] = monthFirst ? [a, b] : [b, a];
    return latestMonthDay(cal, bias, m, d, year);
  };
});

/** Every period that may stand without a preposition; on a tie the earlier wins ("the last month" is rolling). */
const barePeriod: Rule<PeriodRef> = alt(
  rollingWindow,
  relativeDay,
  thisOrLast,
  theWeekend,
  numericDate,
  agoRule,
  recent,
  weekday,
  monthAndDay(true),
);

/** After a preposition a bare year ("in 2025") and a lower-case "may" are dates too. */
const period: Rule<PeriodRef> = alt(barePeriod, monthAndDay(false), yearOnly);

// ---- filters: what the request asks of message dates

const PAST: Bias = { kind: 'past' };
const CURRENT: Bias = { kind: 'current' };

function startDate(p: Period): string | null {
  return 'date' in p.start ? p.start.date : null;
}

function rangeBetween(first: PeriodRef, second: PeriodRef): (cal: Calendar) => DateRange | null {
  return (cal) => {
    const a = first(cal, PAST);
    if (!a) return null;
    const anchor = startDate(a);
    const b = second(cal, anchor ? { kind: 'onOrAfter', date: anchor } : PAST);
    if (!b) return null;
    return { after: a.start, before: b.end };
  };
}

const LOCATING = [
  'on',
  'in',
  'during',
  'from',
  'for',
  'over',
  'within',
  'of',
  'at',
  'throughout',
  'sent',
  'received',
];

type Resolve = (cal: Calendar) => DateRange | null;

const withText =
  (skip: number) =>
  (resolve: Resolve, start: number): DateMatch => ({ resolve, textStart: start + skip });

const rangeWord = alt(word('and', 'to', 'until', 'till', 'through', 'thru'), punct('-', '–'));

/** Two days of one month: "between 3 and 5 June", "3-5 June", "from June 3 to 5". */
function dayRange(m: number, d1: number, d2: number, y: number | undefined): Resolve {
  return (cal) => {
    if (d2 < d1) return null;
    const first = latestMonthDay(cal, PAST, m, d1, y);
    if (!first || !('date' in first.start)) return null;
    const [fy] = ymd(first.start.date);
    const last = validDate(fy, m, d2);
    return last ? { after: first.start, before: { date: addDays(last, 1) } } : null;
  };
}

const dayRangeRule: Rule<Resolve> = alt(
  map(
    seq(opt(word('between', 'from')), dayNumber, rangeWord, dayNumber, monthName(false), opt(yearSuffix)),
    ([prefix, d1, sep, d2, m, y]) => (prefix || sep === '-' || sep === '–' ? dayRange(m, d1, d2, y) : null),
  ),
  map(
    seq(opt(word('between', 'from')), monthName(false), dayNumber, rangeWord, dayNumber, opt(yearSuffix)),
    ([prefix, m, d1, sep, d2, y]) => (prefix || sep === '-' || sep === '–' ? dayRange(m, d1, d2, y) : null),
  ),
);

// "older than a week", "more than 3 days ago", "newer than 2 weeks", "less than a month old"
const ageRule: Rule<Resolve> = alt(
  map(
    seq(
      alt(phrase('older than'), phrase('more than')),
      alt(
        count,
        map(word('a', 'an'), () => 1),
      ),
      unit,
      opt(word('ago', 'old')),
    ),
    ([, n, u]): Resolve =>
      (cal) => ({ before: rolling(cal, n, u).start }),
  ),
  map(
    seq(
      alt(phrase('newer than'), phrase('less than'), phrase('younger than')),
      alt(
        count,
        map(word('a', 'an'), () => 1),
      ),
      unit,
      opt(word('ago', 'old')),
    ),
    ([, n, u]): Resolve =>
      (cal) => ({ after: rolling(cal, n, u).start }),
  ),
);

const dateExpression: Rule<DateMatch> = alt(
  map(dayRangeRule, withText(0)),
  map(ageRule, withText(0)),
  map(
    map(seq(word('between'), period, word('and'), period), ([, a, , b]) => rangeBetween(a, b)),
    withText(0),
  ),
  map(
    map(
      seq(word('from'), period, alt(word('to', 'until', 'till', 'through', 'thru'), punct('-', '–')), period),
      ([, a, , b]) => rangeBetween(a, b),
    ),
    withText(0),
  ),
  map(
    map(
      seq(alt(word('since'), phrase('starting from')), period),
      ([, p]): Resolve =>
        (cal) => {
          const r = p(cal, PAST);
          return r ? { after: r.start } : null;
        },
    ),
    withText(0),
  ),
  map(
    map(
      seq(alt(word('before'), phrase('prior to'), phrase('earlier than')), period),
      ([, p]): Resolve =>
        (cal) => {
          const r = p(cal, CURRENT);
          return r ? { before: r.start } : null;
        },
    ),
    withText(0),
  ),
  map(
    map(
      seq(alt(word('after'), phrase('later than')), period),
      ([, p]): Resolve =>
        (cal) => {
          const r = p(cal, CURRENT);
          return r ? { after: r.end ?? r.start } : null;
        },
    ),
    withText(0),
  ),
  map(
    map(
      seq(alt(word('until', 'till'), phrase('up to')), period),
      ([, p]): Resolve =>
        (cal) => {
          const r = p(cal, CURRENT);
          return r?.end ? { before: r.end } : null;
        },
    ),
    withText(0),
  ),
  map(
    map(
      seq(word(...LOCATING), period),
      ([, p]): Resolve =>
        (cal) => {
          const r = p(cal, PAST);
          return r ? { after: r.start, before: r.end } : null;
        },
    ),
    withText(1),
  ),
  map(
    map(
      barePeriod,
      (p): Resolve =>
        (cal) => {
          const r = p(cal, PAST);
          return r ? { after: r.start, before: r.end } : null;
        },
    ),
    withText(0),
  ),
);

/** Words that can begin a date expression: everywhere else the grammar need not be tried. */
const DATE_STARTS = new Set([
  ...LOCATING,
  ...[
    'between',
    'from',
    'since',
    'starting',
    'before',
    'prior',
    'earlier',
    'after',
    'later',
    'until',
    'till',
  ],
  ...['up', 'older', 'more', 'newer', 'less', 'younger', 'today', 'yesterday', 'tomorrow', 'tonight', 'the'],
  ...[
    'this',
    'current',
    'last',
    'previous',
    'next',
    'past',
    'a',
    'an',
    'couple',
    'few',
    'recently',
    'lately',
  ],
  ...['recent', 'of'],
  ...Object.keys(NUMBER_WORDS),
  ...Object.keys(WEEKDAYS),
  ...Object.keys(MONTHS),
]);

/** A date expression starting at token i. */
export function dateExpressionAt(tokens: readonly Token[], i: number): Match<DateMatch> | null {
  const t = tokens[i];
  if (!t || t.kind === 'punct' || t.kind === 'quoted' || t.kind === 'email' || t.kind === 'domain')
    return null;
  if (t.kind === 'word' && !DATE_STARTS.has(t.lower)) return null;
  return dateExpression(tokens, i);
}
