import { RuntimeError } from "@agent-runtime/runtime-core";
import { isBusyError, toCostError } from "./errors.js";
import type { Ledger } from "./ledger.js";

/** Effects to run once the transaction that made them true has committed. */
export type AfterCommit = (() => void)[];

/** An operation waiting for the next group commit. */
interface QueuedOp {
  op: (after: AfterCommit) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** performance.now() after which a locked ledger fails this operation. */
  deadline: number;
}

/**
 * Runs ledger operations: one at a time for sync callers ({@link GroupCommit.now}), or batched into one
 * `BEGIN IMMEDIATE` transaction per turn of the event loop ({@link GroupCommit.batched}), retrying without
 * blocking while another process holds the ledger's write lock. Operations make their writes atomic
 * themselves (one statement, or their own `ledger.immediate`), so they work alone and inside a batch alike.
 */
export class GroupCommit {
  readonly #ledger: Ledger;
  readonly #ledgerPath: string;
  readonly #busyTimeoutMs: number;
  readonly #queue: QueuedOp[] = [];
  /** A flush is scheduled (next check phase, or a retry after SQLITE_BUSY). */
  #flushScheduled = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Consecutive SQLITE_BUSY retries of the current batch (for the backoff). */
  #busyRetries = 0;

  constructor(ledger: Ledger, options: { ledgerPath: string; busyTimeoutMs: number }) {
    this.#ledger = ledger;
    this.#ledgerPath = options.ledgerPath;
    this.#busyTimeoutMs = options.busyTimeoutMs;
  }

  /** Runs `fn` on the open ledger, mapping failures with `toCostError`; FAILED_PRECONDITION once closed. */
  guarded<T>(fn: () => T): T {
    if (!this.#ledger.db.open) {
      throw new RuntimeError("FAILED_PRECONDITION", "This cost guard is closed; create a new one.");
    }
    try {
      return fn();
    } catch (err) {
      throw toCostError(err, this.#ledgerPath);
    }
  }

  /**
   * Runs one operation now, then its after-commit effects. A sync caller cannot be answered later, so on a
   * locked ledger it waits the only way a sync call can: blocking, up to `busyTimeoutMs`.
   */
  now<T>(op: (after: AfterCommit) => T): T {
    try {
      return this.#nowOnce(op);
    } catch (err) {
      if (!isBusyError(err) || this.#busyTimeoutMs === 0 || !this.#ledger.db.open) throw err;
      this.#ledger.setBusyTimeout(this.#busyTimeoutMs);
      try {
        return this.#nowOnce(op);
      } finally {
        if (this.#ledger.db.open) this.#ledger.setBusyTimeout(0);
      }
    }
  }

  #nowOnce<T>(op: (after: AfterCommit) => T): T {
    const after: AfterCommit = [];
    const value = this.guarded(() => op(after));
    for (const effect of after) effect();
    return value;
  }

  /**
   * Queues an operation for the next group commit: every operation queued before the batch runs shares one
   * `BEGIN IMMEDIATE` transaction, each in its own savepoint (so one refusal does not undo the others), and
   * its promise settles only after the commit, so a resolved settle is durable.
   */
  batched<T>(op: (after: AfterCommit) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = performance.now() + this.#busyTimeoutMs;
      this.#queue.push({ op, resolve: resolve as (value: unknown) => void, reject, deadline });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Fails every queued operation (the guard is closing) and stops retrying. */
  close(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    // Operations still waiting for a locked ledger fail now rather than at their deadline.
    const closed = new RuntimeError("FAILED_PRECONDITION", "This cost guard is closed; create a new one.");
    for (const item of this.#queue.splice(0)) item.reject(closed);
    this.#flushScheduled = false;
  }

  /**
   * Commits the queued operations. When another process holds the ledger's write lock, `BEGIN IMMEDIATE`
   * fails at once (busy timeout 0) and the batch is retried on a timer with backoff, so the event loop keeps
   * running; operations past their deadline (`busyTimeoutMs` after they were queued) fail with UNAVAILABLE.
   */
  #flush(): void {
    this.#flushScheduled = false;
    this.#retryTimer = undefined;
    const batch = this.#queue.splice(0);
    if (batch.length === 0) return;
    const after: AfterCommit = [];
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.guarded(() =>
        this.#ledger.immediate(() => {
          for (const item of batch) {
            const own: AfterCommit = [];
            try {
              // Every operation writes inside its own `immediate`, which nested in the batch is a savepoint.
              outcomes.push({ ok: true, value: item.op(own) });
              after.push(...own);
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        }),
      );
    } catch (error) {
      if (isBusyError(error) && this.#ledger.db.open) {
        this.#retryLocked(batch, error);
        return;
      }
      for (const item of batch) item.reject(toCostError(error, this.#ledgerPath));
      return;
    }
    this.#busyRetries = 0;
    for (const effect of after) effect();
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(toCostError(outcome.error, this.#ledgerPath));
    });
  }

  #retryLocked(batch: QueuedOp[], error: unknown): void {
    const now = performance.now();
    const waiting = batch.filter((item) => item.deadline > now);
    for (const item of batch) {
      if (item.deadline > now) continue;
      item.reject(
        new RuntimeError(
          "UNAVAILABLE",
          `The ledger ${this.#ledgerPath} stayed locked by another process for busyTimeoutMs ` +
            `(${this.#busyTimeoutMs} ms); nothing was written. Retry, raise busyTimeoutMs, or find the ` +
            "process that holds the ledger's write lock.",
          { cause: error, details: { reason: "locked", busyTimeoutMs: this.#busyTimeoutMs } },
        ),
      );
    }
    if (waiting.length === 0) {
      this.#busyRetries = 0;
      return;
    }
    this.#queue.unshift(...waiting);
    const backoff = Math.min(50, 2 * 2 ** this.#busyRetries) * (0.5 + Math.random() / 2);
    this.#busyRetries++;
    const nextDeadline = Math.min(...waiting.map((item) => item.deadline));
    this.#flushScheduled = true;
    this.#retryTimer = setTimeout(() => this.#flush(), Math.max(1, Math.min(backoff, nextDeadline - now)));
  }
}
