// IMAP dates: APPEND's date-time ("17-Jul-1996 02:44:25 -0700"), INTERNALDATE in responses, and the
// plain dates of SEARCH ("1-Feb-1994").
import { ImapSyntaxError, printable } from './errors.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH_INDEX = new Map(MONTHS.map((name, index) => [name.toUpperCase(), index]));
// The day is " 7" or "07" (date-day-fixed); a bare "7" is taken too.
const DATE_TIME = /^(?: ?(\d)|(\d\d))-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/;
const SEARCH_DATE = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/;

/** APPEND's date-time, without its quotes. */
export function parseDateTime(text: string): Date {
  const match = DATE_TIME.exec(text);
  if (!match) throw invalidDate(text);
  const [, shortDay, longDay, monthName, year, hour, minute, second, sign, zoneHours, zoneMinutes] = match;
  const date = calendarDate(Number(shortDay ?? longDay), monthName, Number(year), text);
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59 || Number(zoneMinutes) > 59) {
    throw invalidDate(text);
  }
  const offsetMinutes = (sign === '-' ? -1 : 1) * (Number(zoneHours) * 60 + Number(zoneMinutes));
  date.setUTCHours(Number(hour), Number(minute) - offsetMinutes, Number(second));
  return date;
}

/** INTERNALDATE as RFC 3501 writes it, in UTC: `" 7-Jul-1996 09:44:25 +0000"`. */
export function formatDateTime(date: Date): string {
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const year = String(date.getUTCFullYear()).padStart(4, '0');
  const time = [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()]
    .map((part) => String(part).padStart(2, '0'))
    .join(':');
  return `${day}-${MONTHS[date.getUTCMonth()]}-${year} ${time} +0000`;
}

/** A SEARCH date ("1-Feb-1994", "01-Feb-1994") as `YYYY-MM-DD`. */
export function parseSearchDate(text: string): string {
  const match = SEARCH_DATE.exec(text);
  if (!match) throw invalidDate(text);
  const [, day, monthName, year] = match;
  const date = calendarDate(Number(day), monthName, Number(year), text);
  return date.toISOString().slice(0, 10);
}

/** Midnight UTC of a day that exists (no 30 February). */
function calendarDate(day: number, monthName: string, year: number, text: string): Date {
  const month = MONTH_INDEX.get(monthName.toUpperCase());
  if (month === undefined || day < 1 || day > daysInMonth(year, month)) throw invalidDate(text);
  // setUTCFullYear rather than Date.UTC, which reads years below 100 as 19xx.
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  return date;
}

function daysInMonth(year: number, month: number): number {
  if (month !== 1) return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return leap ? 29 : 28;
}

function invalidDate(text: string): ImapSyntaxError {
  return new ImapSyntaxError(`Invalid date ${printable(text)}`);
}
