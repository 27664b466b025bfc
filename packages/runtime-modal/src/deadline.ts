import { RuntimeError } from "@agent-runtime/runtime-core";
import { type ModalStep, type RetrySettings, sleep, toModalRuntimeError } from "./errors.js";
import type { ResolvedModalRuntimeOptions } from "./options.js";

/** The start deadline without a GPU: create, tunnels, and again for readiness. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 120_000;

/**
 * The start deadline (create and tunnels) when a GPU is asked for: 20 minutes. Modal may queue a GPU sandbox for
 * capacity, and modal@0.11.1 itself waits up to 21 minutes for a V1 sandbox to be scheduled
 * (`SANDBOX_SCHEDULING_TIMEOUT_MS`) before it gives up with "Insufficient capacity".
 */
export const DEFAULT_GPU_STARTUP_TIMEOUT_MS = 20 * 60_000;

/** The image build deadline: 20 minutes (a first build of a large image, e.g. with CUDA, takes minutes). */
export const DEFAULT_IMAGE_BUILD_TIMEOUT_MS = 20 * 60_000;

/**
 * The longest one tunnel request waits, in ms. Both Modal SDKs ask `SandboxGetTunnels` for 50 s at most (the JS
 * SDK's `tunnels()` default, the Python client's `_tunnels(timeout=50)`); longer waits are split into such pieces.
 */
export const TUNNEL_POLL_MS = 50_000;

/** The deadlines of one sandbox's start, resolved from its options (and whether it asks for a GPU). */
export interface StartupTimeouts {
  /** Create and tunnels (from the end of the image build), in ms. */
  provisionMs: number;
  /** The server's readiness, from the tunnel on, in ms. */
  readinessMs: number;
}

/**
 * `startupTimeoutMs` as the user set it applies to both parts; unset, provisioning gets 120 s, or 20 minutes with a
 * GPU (the capacity wait happens before the sandbox runs), and readiness 120 s (the server's own start does not
 * wait for a GPU).
 */
export function startupTimeouts(
  o: Pick<ResolvedModalRuntimeOptions, "startupTimeoutMs" | "gpu">,
): StartupTimeouts {
  if (o.startupTimeoutMs !== undefined)
    return { provisionMs: o.startupTimeoutMs, readinessMs: o.startupTimeoutMs };
  return {
    provisionMs: o.gpu !== undefined ? DEFAULT_GPU_STARTUP_TIMEOUT_MS : DEFAULT_STARTUP_TIMEOUT_MS,
    readinessMs: DEFAULT_STARTUP_TIMEOUT_MS,
  };
}

/**
 * The SDK's `maxThrottleWaitSecs` for a provider: how long one call may keep obeying Modal's requests to slow down
 * (unset, modal@0.11.1 obeys them without bound). Half of the provider's start deadline (its own
 * `startupTimeoutMs`, else 120 s), between 1 and 60 s; past it the call fails with RESOURCE_EXHAUSTED, which a start
 * retries with backoff until its deadline, so a throttled call never outlives a start by more than this.
 */
export function maxThrottleWaitSecs(o: Pick<ResolvedModalRuntimeOptions, "startupTimeoutMs">): number {
  const ms = o.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
  return Math.max(1, Math.min(60, Math.floor(ms / 2000)));
}

/**
 * How long to wait before trying a failed call again, or undefined to give up: RATE_LIMITED (Modal asked to slow
 * down, or had no capacity) is retried with exponential backoff until the deadline, whatever `maxAttempts` says;
 * UNAVAILABLE up to `retry.maxAttempts`; anything else not at all.
 */
export function retryDelayMs(
  err: RuntimeError,
  attempt: number,
  retry: RetrySettings,
  remainingMs: number,
): number | undefined {
  if (err.code !== "RATE_LIMITED" && err.code !== "UNAVAILABLE") return undefined;
  if (err.code === "UNAVAILABLE" && attempt >= retry.maxAttempts) return undefined;
  const exp = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  const delay = exp * (0.75 + Math.random() * 0.5);
  return delay < remainingMs ? delay : undefined;
}

/**
 * A point in time one start must end by, named after the option that set it: every provisioning step runs within
 * it ({@link Deadline.race}, {@link Deadline.run}), and a step still running when it passes is left behind with
 * TIMEOUT (its late result handed to `onLate`, e.g. to stop a sandbox created after we gave up).
 */
export class Deadline {
  #at: number;
  readonly #budgetMs: number;
  readonly #option: string;
  readonly #signal: AbortSignal | undefined;

  constructor(budgetMs: number, option: string, signal?: AbortSignal) {
    this.#budgetMs = budgetMs;
    this.#at = Date.now() + budgetMs;
    this.#option = option;
    this.#signal = signal;
  }

  /** Epoch ms. */
  get at(): number {
    return this.#at;
  }

  /** Milliseconds left (0 once passed). */
  remainingMs(): number {
    return Math.max(0, this.#at - Date.now());
  }

  /** Moves the deadline `ms` later (time spent in a step that has a deadline of its own: the image build). */
  extend(ms: number): void {
    this.#at += ms;
  }

  /** TIMEOUT for `what` (a phrase such as "Modal did not create the sandbox"). */
  timeoutError(step: ModalStep, what: string): RuntimeError {
    return new RuntimeError(
      "TIMEOUT",
      `${what} within ${this.#option} (${this.#budgetMs} ms); raise ${this.#option} or retry.`,
      { details: { step } },
    );
  }

  /**
   * What to throw when the deadline passed while a failed step was being retried: the last failure (RATE_LIMITED,
   * UNAVAILABLE), which says why, noting that it was retried until the deadline; else `timeout` itself.
   */
  gaveUp(timeout: RuntimeError, last: RuntimeError | undefined): RuntimeError {
    if (!last || timeout.code !== "TIMEOUT") return timeout;
    return new RuntimeError(
      last.code,
      `${last.message} (retried with backoff until ${this.#option}, ${this.#budgetMs} ms, passed)`,
      { cause: last, ...(last.details ? { details: last.details } : {}) },
    );
  }

  /**
   * `pending` within the deadline: TIMEOUT (`late` names what did not finish) when it passes first, CANCELLED when
   * the signal aborts. A value that arrives after that goes to `onLate`; a late failure is dropped.
   */
  race<T>(pending: Promise<T>, step: ModalStep, late: string, onLate?: (value: T) => void): Promise<T> {
    const signal = this.#signal;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const timer = setTimeout(() => {
        finish();
        reject(this.timeoutError(step, late));
      }, this.remainingMs());
      const onAbort = () => {
        finish();
        reject(new RuntimeError("CANCELLED", "connect() was aborted while the sandbox was starting"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      pending.then(
        (value) => {
          if (settled) return onLate?.(value);
          finish();
          resolve(value);
        },
        (err: unknown) => {
          if (settled) return;
          finish();
          reject(err);
        },
      );
    });
  }

  /**
   * Runs an idempotent Modal call within the deadline; failures are mapped by `toModalRuntimeError` and retried as
   * {@link retryDelayMs} says (RATE_LIMITED until the deadline, UNAVAILABLE up to `retry.maxAttempts`).
   */
  async run<T>(
    fn: () => Promise<T>,
    o: {
      step: ModalStep;
      what: string;
      late: string;
      retry: RetrySettings;
      onRetry?: (err: RuntimeError) => void;
    },
  ): Promise<T> {
    let last: RuntimeError | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.race(fn(), o.step, o.late);
      } catch (raw) {
        const err = toModalRuntimeError(raw, o.step, o.what);
        const delay = retryDelayMs(err, attempt, o.retry, this.remainingMs());
        if (delay === undefined || this.#signal?.aborted) throw this.gaveUp(err, last);
        last = err;
        o.onRetry?.(err);
        await sleep(delay, this.#signal);
      }
    }
  }
}
