import type { Logger } from "../logger.js";
import type { BaseRuntime } from "./base-runtime.js";
import type { ResolvedSessionOverrides } from "./overrides.js";
import { RuntimeStatus } from "./types.js";

/** Options of {@link WarmPool}. */
export interface WarmPoolOptions<TRuntime extends BaseRuntime> {
  /** Sandboxes kept ready. */
  size: number;
  /** Creates a runtime under a pool session id (the pool connects it). */
  create: (poolSessionId: string) => Promise<TRuntime> | TRuntime;
  logger: Logger;
  /** Delay before retrying after a failed refill, in ms. @default 1000 */
  retryDelayMs?: number;
}

/**
 * Keeps `size` connected runtimes ready. `acquire()` hands one out at once (re-bound to the caller's session)
 * and refills in the background; `drain()` stops refilling and closes every pooled runtime.
 */
export class WarmPool<TRuntime extends BaseRuntime> {
  readonly #opts: WarmPoolOptions<TRuntime>;
  readonly #ready: TRuntime[] = [];
  readonly #starting = new Set<Promise<void>>();
  #draining = false;
  #counter = 0;
  #failures = 0;

  constructor(options: WarmPoolOptions<TRuntime>) {
    this.#opts = options;
  }

  /** Runtimes ready to hand out. */
  get readyCount(): number {
    return this.#ready.length;
  }

  /** Runtimes being started. */
  get startingCount(): number {
    return this.#starting.size;
  }

  /** Starts filling the pool (idempotent). */
  fill(): void {
    while (!this.#draining && this.#ready.length + this.#starting.size < this.#opts.size) {
      const id = `pool-${process.pid}-${Date.now().toString(36)}-${this.#counter++}`;
      const p: Promise<void> = this.#startOne(id).finally(() => {
        this.#starting.delete(p);
        this.fill();
      });
      this.#starting.add(p);
    }
  }

  async #startOne(id: string): Promise<void> {
    let runtime: TRuntime | undefined;
    try {
      runtime = await this.#opts.create(id);
      await runtime.connect();
      if (this.#draining) {
        await runtime.close();
        return;
      }
      this.#failures = 0;
      this.#ready.push(runtime);
    } catch (err) {
      await runtime?.close().catch(() => undefined);
      this.#failures++;
      this.#opts.logger.warn("warm pool could not start a sandbox; retrying", {
        error: String(err),
        failures: this.#failures,
      });
      const delay = Math.min(
        30_000,
        (this.#opts.retryDelayMs ?? 1000) * 2 ** Math.min(5, this.#failures - 1),
      );
      await new Promise((r) => setTimeout(r, delay).unref());
    }
  }

  /**
   * Returns a ready runtime re-bound to `sessionId` (and `overrides`, which must not change the sandbox's shape:
   * labels only), or undefined when none is ready. Refills in the background. The runtime's cost lease, reserved
   * under the pool's session id, moves to `sessionId` (and `overrides.userId`) through `CostHooks.rescope` (see
   * `BaseRuntime.rebind`).
   */
  acquire(sessionId: string, overrides?: ResolvedSessionOverrides): TRuntime | undefined {
    let runtime = this.#ready.shift();
    // A pooled sandbox may have died while waiting: drop it and try the next one.
    while (runtime && runtime.status !== RuntimeStatus.READY) {
      void runtime.close().catch(() => undefined);
      runtime = this.#ready.shift();
    }
    // Refill after the caller got its runtime: starting a sandbox does synchronous work (spawn, mkdir).
    setImmediate(() => this.fill());
    if (!runtime) return undefined;
    runtime.rebind(sessionId, overrides);
    return runtime;
  }

  /** Stops refilling, waits for starts in flight, and closes every pooled runtime. */
  async drain(): Promise<void> {
    this.#draining = true;
    await Promise.allSettled([...this.#starting]);
    const all = this.#ready.splice(0);
    await Promise.allSettled(all.map((r) => r.close()));
  }
}
