/** A source of the current time in epoch ms; inject one to control accrual, reaping and periods in tests. */
export interface Clock {
  now(): number;
}

/** The wall clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told to: for tests of accrual, the idle reaper, thresholds and UTC periods.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(Date.parse("2026-10-01T23:59:00Z"));
 * clock.advance(120_000); // now the next UTC day
 * ```
 */
export class ManualClock implements Clock {
  #ms: number;

  constructor(startMs = 0) {
    this.#ms = startMs;
  }

  now(): number {
    return this.#ms;
  }

  /** Moves the clock forward by `ms` (must be >= 0). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance needs ms >= 0, got ${ms}`);
    this.#ms += ms;
  }

  /** Sets the clock to an epoch-ms instant. */
  set(ms: number): void {
    this.#ms = ms;
  }
}
