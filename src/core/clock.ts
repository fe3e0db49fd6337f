// The one clock that schedules read (warmup days and send times, health recomputation, SLA timers).
// Production uses the system's time; tests pass a ManualClock to run simulated days without sleeping.
// Rows still take their timestamps from the database (now()); a clock decides *when* work is due.

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told: tests set it to a day and advance it hour by hour. */
export class ManualClock implements Clock {
  #ms: number;

  constructor(start: Date | string | number = Date.now()) {
    this.#ms = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.#ms);
  }

  set(to: Date | string | number): void {
    this.#ms = new Date(to).getTime();
  }

  advance(ms: number): Date {
    this.#ms += ms;
    return this.now();
  }
}
