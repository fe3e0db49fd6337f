// Business-time arithmetic: working hours in a zone, weekends, holidays, DST days, several intervals a
// day, and 24/7 (no calendar).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addBusinessMs,
  businessMsBetween,
  hoursProblem,
  isBusinessTime,
  type PreparedCalendar,
  prepareCalendar,
} from '../../../src/modules/helpdesk-sla/business-hours.ts';

const MIN = 60_000;
const weekdays = (start: string, end: string) => [1, 2, 3, 4, 5].map((day) => ({ day, start, end }));
const berlin = prepareCalendar({
  timeZone: 'Europe/Berlin',
  hours: weekdays('09:00', '17:00'),
  holidays: ['2027-01-11'],
});
const add = (from: string, minutes: number, cal: PreparedCalendar | null = berlin) =>
  addBusinessMs(new Date(from), minutes * MIN, cal)!.toISOString();
const between = (a: string, b: string, cal: PreparedCalendar | null = berlin) =>
  businessMsBetween(new Date(a), new Date(b), cal) / MIN;

describe('business hours', () => {
  test('Friday 16:00 plus four working hours is Monday noon; a holiday Monday moves it to Tuesday', () => {
    const noHoliday = prepareCalendar({
      timeZone: 'Europe/Berlin',
      hours: weekdays('09:00', '17:00'),
      holidays: [],
    });
    // 2027-01-08 is a Friday; Berlin is UTC+1 in winter.
    assert.equal(add('2027-01-08T15:00:00Z', 240, noHoliday), '2027-01-11T11:00:00.000Z');
    assert.equal(add('2027-01-08T15:00:00Z', 240), '2027-01-12T11:00:00.000Z');
    assert.equal(between('2027-01-08T15:00:00Z', '2027-01-12T11:00:00Z'), 240);
    assert.equal(between('2027-01-08T15:00:00Z', '2027-01-11T11:00:00Z', noHoliday), 240);
  });

  test('landing on the end of a day stays there; starting outside hours starts at the next opening', () => {
    assert.equal(add('2027-01-08T15:00:00Z', 60), '2027-01-08T16:00:00.000Z'); // Fri 17:00 Berlin
    assert.equal(add('2027-01-09T10:00:00Z', 30), '2027-01-12T08:30:00.000Z'); // Saturday → Tue 09:30
    assert.equal(add('2027-01-12T06:00:00Z', 1), '2027-01-12T08:01:00.000Z'); // 07:00 → 09:01
    assert.equal(add('2027-01-12T06:00:00Z', 0), '2027-01-12T06:00:00.000Z');
    assert.equal(between('2027-01-09T00:00:00Z', '2027-01-10T23:00:00Z'), 0, 'a weekend counts nothing');
    assert.equal(between('2027-01-12T10:00:00Z', '2027-01-12T09:00:00Z'), 0, 'backwards counts nothing');
    assert.equal(
      between('2027-01-04T00:00:00Z', '2027-01-18T00:00:00Z'),
      9 * 8 * 60,
      'two weeks, one holiday',
    );
  });

  test('DST: 09:00 stays 09:00 local, and a day spanning the change is an hour shorter or longer', () => {
    // Europe/Berlin springs forward on 2027-03-28 (Sunday) and falls back on 2027-10-31 (Sunday).
    assert.equal(add('2027-03-26T15:00:00Z', 120), '2027-03-29T08:00:00.000Z', 'Mon 10:00 CEST = 08:00Z');
    assert.equal(add('2027-10-29T14:00:00Z', 120), '2027-11-01T09:00:00.000Z', 'Mon 10:00 CET = 09:00Z');
    const always = prepareCalendar({
      timeZone: 'Europe/Berlin',
      hours: [0, 1, 2, 3, 4, 5, 6].map((day) => ({ day, start: '00:00', end: '24:00' })),
      holidays: [],
    });
    assert.equal(between('2027-03-27T23:00:00Z', '2027-03-28T22:00:00Z', always), 23 * 60);
    assert.equal(between('2027-10-30T22:00:00Z', '2027-10-31T23:00:00Z', always), 25 * 60);
    assert.equal(add('2027-03-27T23:00:00Z', 24 * 60, always), '2027-03-28T23:00:00.000Z');
  });

  test('several intervals a day, other zones, and 24/7 without a calendar', () => {
    const split = prepareCalendar({
      timeZone: 'America/New_York',
      hours: [1, 2, 3, 4, 5].flatMap((day) => [
        { day, start: '08:00', end: '12:00' },
        { day, start: '13:00', end: '17:00' },
      ]),
      holidays: [],
    });
    // Monday 2027-01-04 11:00 New York (16:00Z) + 2h: one hour before lunch, one after → 14:00 = 19:00Z.
    assert.equal(add('2027-01-04T16:00:00Z', 120, split), '2027-01-04T19:00:00.000Z');
    assert.equal(between('2027-01-04T13:00:00Z', '2027-01-04T22:00:00Z', split), 8 * 60);
    assert.equal(isBusinessTime(new Date('2027-01-04T17:30:00Z'), split), false, 'lunch');
    assert.equal(isBusinessTime(new Date('2027-01-04T18:30:00Z'), split), true);
    assert.equal(add('2027-01-09T10:00:00Z', 90, null), '2027-01-09T11:30:00.000Z');
    assert.equal(between('2027-01-09T10:00:00Z', '2027-01-09T11:30:00Z', null), 90);
  });

  test('an instant and its sum agree: between(from, add(from, n)) = n for many starts', () => {
    for (let h = 0; h < 24 * 9; h += 5) {
      const from = new Date(Date.parse('2027-01-06T00:17:00Z') + h * 3_600_000);
      for (const n of [1, 59, 480, 1000]) {
        const to = addBusinessMs(from, n * MIN, berlin)!;
        assert.equal(businessMsBetween(from, to, berlin), n * MIN, `${from.toISOString()} + ${n}`);
      }
    }
  });

  test('bad hours are named', () => {
    assert.match(hoursProblem([{ day: 1, start: '17:00', end: '09:00' }])!, /not after/);
    assert.match(hoursProblem([{ day: 7, start: '09:00', end: '17:00' }])!, /not 0/);
    assert.match(hoursProblem([{ day: 1, start: '9am', end: '17:00' }])!, /HH:MM/);
    assert.match(
      hoursProblem([
        { day: 1, start: '09:00', end: '13:00' },
        { day: 1, start: '12:00', end: '17:00' },
      ])!,
      /overlap/,
    );
    assert.match(hoursProblem([])!, /at least one/);
    assert.equal(hoursProblem([{ day: 0, start: '00:00', end: '24:00' }]), null);
  });

  test('a calendar whose every working day is a holiday never reaches a target', () => {
    const holidays: string[] = [];
    for (let d = Date.parse('2027-01-01'); d < Date.parse('2038-01-01'); d += 86_400_000)
      if (new Date(d).getUTCDay() === 3) holidays.push(new Date(d).toISOString().slice(0, 10));
    const cal = prepareCalendar({
      timeZone: 'UTC',
      hours: [{ day: 3, start: '09:00', end: '10:00' }],
      holidays,
    });
    assert.equal(addBusinessMs(new Date('2027-01-01T00:00:00Z'), MIN, cal), null);
  });
});
