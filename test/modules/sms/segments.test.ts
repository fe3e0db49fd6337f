// Segment counting against known GSM 03.38 and UCS-2 cases, and number normalisation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeNumber, parseNumber } from '../../../src/modules/sms/numbers.ts';
import { measure } from '../../../src/modules/sms/segments.ts';
import { quietUntil, zoneOf } from '../../../src/modules/sms/zones.ts';

describe('segments', () => {
  test('GSM-7: 160 septets in one part, 153 per part beyond', () => {
    assert.deepEqual(measure('a'.repeat(160)), { encoding: 'gsm7', characters: 160, units: 160, parts: 1 });
    assert.deepEqual(measure('a'.repeat(161)), { encoding: 'gsm7', characters: 161, units: 161, parts: 2 });
    assert.equal(measure('a'.repeat(306)).parts, 2);
    assert.equal(measure('a'.repeat(307)).parts, 3);
    // The basic table's accented letters and Greek capitals are one septet each.
    assert.deepEqual(measure('Ça coûte'), { encoding: 'ucs2', characters: 8, units: 8, parts: 1 });
    assert.deepEqual(measure('Ärger über ΔΩ £5 @home ¿§'), {
      encoding: 'gsm7',
      characters: 25,
      units: 25,
      parts: 1,
    });
  });

  test('the extension table counts two septets and never splits across parts', () => {
    assert.deepEqual(measure('€[]{}'), { encoding: 'gsm7', characters: 5, units: 10, parts: 1 });
    assert.deepEqual(measure('^|~\\'), { encoding: 'gsm7', characters: 4, units: 8, parts: 1 });
    // 80 euro signs: 160 septets, one part; one more character needs a second.
    assert.equal(measure('€'.repeat(80)).parts, 1);
    assert.equal(measure(`${'€'.repeat(80)}a`).parts, 2);
    // 152 septets then an escape pair: the pair goes whole into part two (153 would split it).
    const body = `${'a'.repeat(152)}€${'a'.repeat(10)}`;
    assert.deepEqual(measure(body), { encoding: 'gsm7', characters: 163, units: 164, parts: 2 });
    // 153 × 2 = 306 septets of plain text fit two parts; the same with an escape pair at the seam needs three.
    assert.equal(measure(`${'a'.repeat(152)}€${'a'.repeat(152)}`).parts, 3);
  });

  test('UCS-2: 70 units in one part, 67 per part; an emoji is two units and is not split', () => {
    assert.deepEqual(measure('Привет'), { encoding: 'ucs2', characters: 6, units: 6, parts: 1 });
    assert.deepEqual(measure('é'.repeat(0) + 'ç'.repeat(70)), {
      encoding: 'ucs2',
      characters: 70,
      units: 70,
      parts: 1,
    });
    assert.equal(measure('ç'.repeat(71)).parts, 2);
    assert.equal(measure('ç'.repeat(134)).parts, 2);
    assert.equal(measure('ç'.repeat(135)).parts, 3);
    assert.deepEqual(measure('Hi 👋'), { encoding: 'ucs2', characters: 4, units: 5, parts: 1 });
    assert.deepEqual(measure('😀'.repeat(35)), { encoding: 'ucs2', characters: 35, units: 70, parts: 1 });
    // 66 units then an emoji: it goes whole into part two.
    const body = `${'ç'.repeat(66)}😀${'ç'.repeat(10)}`;
    assert.deepEqual(measure(body), { encoding: 'ucs2', characters: 77, units: 78, parts: 2 });
  });
});

describe('numbers', () => {
  test('national numbers take the default region, international ones keep theirs', () => {
    assert.equal(normalizeNumber('(415) 555-2671', 'US'), '+14155552671');
    assert.equal(normalizeNumber('020 7946 0958', 'GB'), '+442079460958');
    assert.equal(normalizeNumber('+44 20 7946 0958', 'US'), '+442079460958');
    assert.equal(normalizeNumber('+49 151 23456789', 'US'), '+4915123456789');
    assert.equal(parseNumber('+61 412 345 678', 'US')?.country, 'AU');
  });

  test('an invalid number is a 422 naming it', () => {
    for (const raw of ['12', '020 7946 0958', 'not a number', '+1 555']) {
      assert.throws(
        () => normalizeNumber(raw, 'US'),
        (err: any) => err.status === 422 && err.code === 'invalid_number' && err.message.includes(raw),
      );
    }
  });
});

describe('quiet hours', () => {
  test('by the recipient’s zone, spanning midnight, ending at the local end time', () => {
    assert.equal(zoneOf('+14155552671', 'US'), 'America/Los_Angeles');
    assert.equal(zoneOf('+12125550123', 'US'), 'America/New_York');
    assert.equal(zoneOf('+442079460958', 'GB'), 'Europe/London');
    assert.equal(zoneOf('+999', null), null);
    // 23:30 in Los Angeles (07:30 UTC, PDT): quiet until 08:00 local = 15:00 UTC.
    const at = new Date('2025-06-10T06:30:00Z');
    assert.equal(
      quietUntil(at, 'America/Los_Angeles', '21:00', '08:00')?.toISOString(),
      '2025-06-10T15:00:00.000Z',
    );
    // The same instant is 07:30 in London (BST): quiet until 08:00 = 07:00 UTC.
    assert.equal(
      quietUntil(at, 'Europe/London', '21:00', '08:00')?.toISOString(),
      '2025-06-10T07:00:00.000Z',
    );
    // 16:30 in Tokyo: not quiet.
    assert.equal(quietUntil(at, 'Asia/Tokyo', '21:00', '08:00'), null);
    // A window within one day.
    assert.equal(
      quietUntil(new Date('2025-01-10T12:30:00Z'), 'UTC', '12:00', '13:00')?.toISOString(),
      '2025-01-10T13:00:00.000Z',
    );
  });
});
