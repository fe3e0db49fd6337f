// The Sender Rewriting Scheme on its own: signing, reversing, SRS1 for re-forwarded mail, and expiry
// (which the SMTP tests cannot reach without waiting days).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Srs } from '../../../src/modules/inbound/srs.ts';

const DAY = 86_400_000;

describe('SRS', () => {
  const key = randomBytes(32);
  let now = Date.UTC(2026, 10, 30);
  const srs = new Srs({ key, maxAgeDays: 21, now: () => now });
  const localOf = (address: string) => address.slice(0, address.lastIndexOf('@'));

  test('SRS0 round trip, the null sender and our own domain stay as they are', () => {
    const rewritten = srs.rewrite('Alice@Origin.example', 'forward.example');
    assert.match(rewritten, /^SRS0=[a-z2-7]{4}=[a-z2-7]{2}=origin\.example=alice@forward\.example$/);
    assert.equal(srs.reverse(localOf(rewritten)), 'alice@origin.example');
    assert.equal(srs.rewrite('', 'forward.example'), '');
    assert.equal(srs.rewrite('bob@forward.example', 'forward.example'), 'bob@forward.example');
  });

  test('another forwarder’s SRS0 address becomes SRS1, which reverses to that forwarder', () => {
    const theirs = new Srs({ key: randomBytes(32), maxAgeDays: 21, now: () => now });
    const first = theirs.rewrite('carol@origin.example', 'first.example');
    const second = srs.rewrite(first, 'forward.example');
    assert.match(
      second,
      /^SRS1=[a-z2-7]{4}=first\.example==[a-z2-7]{4}=[a-z2-7]{2}=origin\.example=carol@forward\.example$/,
    );
    const back = srs.reverse(localOf(second));
    assert.equal(back, first);
    // Forwarding our SRS1 again keeps one level of wrapping.
    assert.match(srs.rewrite(second, 'third.example'), /^SRS1=[a-z2-7]{4}=first\.example==/);
  });

  test('forged hashes, other keys and expired addresses are refused', () => {
    const rewritten = srs.rewrite('dave@origin.example', 'forward.example');
    const local = localOf(rewritten);
    assert.equal(srs.reverse(local.replace(/^SRS0=[a-z2-7]{4}/, 'SRS0=aaaa')), null);
    assert.equal(new Srs({ key: randomBytes(32), maxAgeDays: 21 }).reverse(local), null);
    assert.equal(srs.reverse(local.replace('=dave', '=mallory')), null);
    now += 21 * DAY;
    assert.equal(srs.reverse(local), 'dave@origin.example', 'still valid on its last day');
    now += DAY;
    assert.equal(srs.reverse(local), null, 'expired');
  });
});
