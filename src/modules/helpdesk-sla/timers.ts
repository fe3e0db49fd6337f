// A target's timer as a small state machine over business time. Time counts from `countedFrom` (while
// running) on top of `elapsedMs` (what counted before: before a pause, before a policy or calendar change).
// Every transition first folds the running span into `elapsedMs` with the calendar it ran under, so a pause
// shifts the due time by exactly the business time it lasted, and a new policy or calendar applies from
// the moment it does. Pure: the caller passes the instant and the calendars.
import { addBusinessMs, businessMsBetween, type PreparedCalendar } from './business-hours.ts';
import type { PolicyRow, Target, TimerRow, TimerState } from './tables.ts';

const MINUTE = 60_000;

export function targetMinutesOf(policy: PolicyRow, target: Target): number | null {
  return target === 'first_response'
    ? policy.firstResponseMinutes
    : target === 'next_response'
      ? policy.nextResponseMinutes
      : policy.resolutionMinutes;
}

/** Business ms counted so far, up to `now`. */
export function elapsedMs(timer: TimerRow, now: Date, cal: PreparedCalendar | null): number {
  if (timer.state !== 'running' || !timer.countedFrom) return timer.elapsedMs;
  return timer.elapsedMs + businessMsBetween(timer.countedFrom, now, cal);
}

/** Sets a running timer's warning and due instants from what is left of its target. */
function schedule(timer: TimerRow, cal: PreparedCalendar | null): void {
  if (timer.state !== 'running' || !timer.countedFrom) return;
  const targetMs = timer.targetMinutes * MINUTE;
  timer.dueAt = addBusinessMs(timer.countedFrom, targetMs - timer.elapsedMs, cal);
  timer.warnAt =
    timer.warnShare === null
      ? null
      : addBusinessMs(timer.countedFrom, Math.round(targetMs * timer.warnShare) - timer.elapsedMs, cal);
}

/** Folds the running span into elapsedMs and stops counting. */
function fold(timer: TimerRow, now: Date, cal: PreparedCalendar | null): void {
  timer.elapsedMs = Math.round(elapsedMs(timer, now, cal));
  timer.countedFrom = null;
}

export function newTimer(
  ticket: { ticketId: string; organizationId: string },
  target: Target,
  policy: PolicyRow,
  startedAt: Date,
  cal: PreparedCalendar | null,
): TimerRow {
  const timer: TimerRow = {
    ticketId: ticket.ticketId,
    organizationId: ticket.organizationId,
    target,
    policyId: policy.id,
    calendarId: policy.calendarId,
    targetMinutes: targetMinutesOf(policy, target)!,
    warnShare: policy.warnAt,
    state: 'running',
    startedAt,
    countedFrom: startedAt,
    elapsedMs: 0,
    warnAt: null,
    dueAt: null,
    warned: false,
    breached: false,
    warnedAt: null,
    breachedAt: null,
    metAt: null,
  };
  schedule(timer, cal);
  return timer;
}

/** Stops the clock (the ticket waits on the customer). */
export function pause(timer: TimerRow, now: Date, cal: PreparedCalendar | null): void {
  if (timer.state !== 'running') return;
  fold(timer, now, cal);
  timer.state = 'paused';
}

/** Counts again from `now` (a paused timer, or one stopped or met by a resolution that was undone). */
export function resume(timer: TimerRow, now: Date, cal: PreparedCalendar | null): void {
  if (timer.state === 'running') return;
  timer.state = 'running';
  timer.countedFrom = now;
  timer.metAt = null;
  schedule(timer, cal);
}

/** The target was met (`met`), or the ticket was resolved before it was (`stopped`). */
export function finish(
  timer: TimerRow,
  now: Date,
  cal: PreparedCalendar | null,
  state: Extract<TimerState, 'met' | 'stopped'>,
): void {
  if (timer.state === 'met' || timer.state === 'stopped') return;
  fold(timer, now, cal);
  timer.state = state;
  timer.metAt = now;
}

/**
 * Applies another policy's target, warning share and calendar from `now` on: the time counted so far stays
 * counted (under the calendar it ran under). Warnings and breaches that fired stay fired.
 */
export function retarget(
  timer: TimerRow,
  policy: PolicyRow,
  now: Date,
  oldCal: PreparedCalendar | null,
  newCal: PreparedCalendar | null,
): void {
  const running = timer.state === 'running';
  if (running) fold(timer, now, oldCal);
  timer.policyId = policy.id;
  timer.calendarId = policy.calendarId;
  timer.targetMinutes = targetMinutesOf(policy, timer.target)!;
  timer.warnShare = policy.warnAt;
  if (running) {
    timer.countedFrom = now;
    schedule(timer, newCal);
  }
}

/** The same policy, with a calendar whose hours or holidays changed: counted time stays, the rest moves. */
export function recalendar(
  timer: TimerRow,
  now: Date,
  oldCal: PreparedCalendar | null,
  newCal: PreparedCalendar | null,
): void {
  if (timer.state !== 'running') return;
  fold(timer, now, oldCal);
  timer.countedFrom = now;
  schedule(timer, newCal);
}
