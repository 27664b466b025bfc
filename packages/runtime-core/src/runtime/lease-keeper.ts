import type { CostHooks, CostScope, LeaseInfo, SandboxCostSpec, SettlementInfo } from "../context.js";
import { RuntimeError } from "../errors.js";
import type { Logger } from "../logger.js";

/** Options of {@link LeaseKeeper}. */
export interface LeaseKeeperOptions {
  /** The cost plugin's lease hooks; absent: no cost plugin, so the keeper holds no lease and does nothing. */
  cost: CostHooks | undefined;
  logger: Logger;
  /** Fewest ms between two heartbeats of the lease. @default 5000 */
  heartbeatEveryMs?: number;
}

/** What {@link LeaseKeeper.reserve} needs. */
export interface LeaseRequest {
  /** What the sandbox uses; undefined: it costs nothing, so no lease is reserved. */
  spec: SandboxCostSpec | undefined;
  /** Who the lease is charged to. */
  scope: CostScope;
  /** Lifetime the reservation covers, in ms. */
  lifetimeMs: number;
}

/**
 * The one owner of a runtime's cost lease, for every backend (BaseRuntime holds one): it reserves before the
 * sandbox is created, activates the lease with the sandbox id, heartbeats while actions run, registers the cost
 * plugin's terminate hook, moves the lease to the session a pooled sandbox is handed to, and settles it
 * **exactly once**. Close, a sandbox found dead, a failed start and a budget stop may all ask to settle, at once or
 * one after another: the first call settles, every later call returns the first call's promise.
 *
 * Without a cost plugin (or without a cost spec) it holds no lease and every method is a no-op.
 * Failures to heartbeat, rescope or settle are logged (lease ids only), never thrown: the orphan sweeper of the
 * cost plugin settles what could not be settled here. Failures to reserve and activate are thrown: a sandbox
 * must not start without its lease.
 *
 * @example
 * ```ts
 * const keeper = new LeaseKeeper({ cost: context.cost, logger });
 * await keeper.reserve({ spec, scope: { sessionId }, lifetimeMs: 3_600_000 });
 * await keeper.activate(sandboxId);
 * await Promise.all([keeper.settle("closed"), keeper.settle("sandbox gone")]); // one settle
 * ```
 */
export class LeaseKeeper {
  readonly #cost: CostHooks | undefined;
  readonly #logger: Logger;
  readonly #heartbeatEveryMs: number;
  #lease: LeaseInfo | undefined;
  #scope: CostScope | undefined;
  #reserving: Promise<LeaseInfo | undefined> | undefined;
  /** Rescopes run in order; settle waits for them, so the lease is never moved after it was settled. */
  #pending: Promise<void> = Promise.resolve();
  #settlement: Promise<SettlementInfo | undefined> | undefined;
  #unregisterTerminate: (() => void) | undefined;
  #lastHeartbeat = 0;

  constructor(options: LeaseKeeperOptions) {
    this.#cost = options.cost;
    this.#logger = options.logger;
    this.#heartbeatEveryMs = options.heartbeatEveryMs ?? 5_000;
  }

  /** The lease, once reserved or adopted; undefined without a cost plugin. Still set after it was settled. */
  get lease(): LeaseInfo | undefined {
    return this.#lease;
  }

  /** Who the lease is charged to now (after any rescope the cost plugin accepted). */
  get scope(): CostScope | undefined {
    return this.#scope;
  }

  /** True once {@link settle} was called (the settlement may still be in flight). */
  get settled(): boolean {
    return this.#settlement !== undefined;
  }

  /**
   * Reserves the lease before anything is created. Resolves undefined (and reserves nothing) without a cost
   * plugin or a spec. Throws what the cost plugin throws (BUDGET_EXCEEDED...), and FAILED_PRECONDITION when this
   * keeper already holds a lease or was settled.
   */
  reserve(request: LeaseRequest): Promise<LeaseInfo | undefined> {
    if (this.#settlement)
      return Promise.reject(
        new RuntimeError(
          "FAILED_PRECONDITION",
          "This runtime's cost lease was settled; create a new runtime.",
        ),
      );
    if (this.#reserving || this.#lease)
      return Promise.reject(
        new RuntimeError("FAILED_PRECONDITION", "This runtime already holds a cost lease."),
      );
    const cost = this.#cost;
    if (!cost || !request.spec) return Promise.resolve(undefined);
    const scope = { ...request.scope };
    this.#reserving = cost
      .reserve({ spec: request.spec, scope, lifetimeMs: request.lifetimeMs })
      .then((lease) => {
        this.#lease = lease;
        this.#scope = scope;
        return lease;
      });
    return this.#reserving;
  }

  /**
   * Takes over the open lease of a re-attached sandbox (from its handle). Kept even without a cost plugin, so the
   * runtime's handle still names it.
   */
  adopt(lease: LeaseInfo): void {
    if (this.#lease || this.#reserving || this.#settlement) return;
    this.#lease = { ...lease };
  }

  /** Records the sandbox id on the lease (the cost plugin's sweeper finds the sandbox by it). Throws on failure. */
  async activate(sandboxId: string): Promise<void> {
    const lease = this.#lease;
    if (!lease || !this.#cost || this.#settlement) return;
    await this.#cost.activate(lease.leaseId, sandboxId);
  }

  /** Tells the cost plugin the sandbox is in use, at most once per `heartbeatEveryMs`; failures are logged. */
  heartbeat(): void {
    const lease = this.#lease;
    if (!lease || !this.#cost || this.#settlement) return;
    const now = Date.now();
    if (now - this.#lastHeartbeat < this.#heartbeatEveryMs) return;
    this.#lastHeartbeat = now;
    this.#cost.heartbeat(lease.leaseId).catch((err: unknown) => {
      this.#logger.warn("cost lease heartbeat failed", { leaseId: lease.leaseId, error: String(err) });
    });
  }

  /**
   * Registers what the cost plugin calls to stop the sandbox (a budget or the idle reaper). Replaces an earlier
   * registration; removed when the lease is settled or {@link detach}ed. Nothing without `CostHooks.onTerminate`.
   */
  onTerminate(terminate: (reason: string) => Promise<void>): void {
    const lease = this.#lease;
    if (!lease || !this.#cost?.onTerminate || this.#settlement) return;
    this.#unregisterTerminate?.();
    this.#unregisterTerminate = this.#cost.onTerminate(lease.leaseId, terminate);
  }

  /**
   * This object stops acting for the sandbox but leaves its lease open (a kept-alive sandbox, re-attached later
   * from its handle): the terminate hook is removed, so the cost plugin stops the sandbox through its inventory.
   */
  detach(): void {
    this.#unregisterTerminate?.();
    this.#unregisterTerminate = undefined;
  }

  /**
   * Moves the lease to `scope` (a pooled sandbox handed out to a session) through `CostHooks.rescope`. A cost
   * plugin without `rescope` keeps the old scope (the pool's), and so does one that fails: both are logged as
   * warnings, never thrown. Resolves once the cost plugin answered; rescopes apply in call order.
   */
  rescope(scope: CostScope): Promise<void> {
    // Asked after the settlement: nothing to move. Asked before: it runs, and the settlement waits for it.
    if (this.#settlement) return Promise.resolve();
    const next = this.#pending.then(() => this.#rescope({ ...scope }));
    this.#pending = next;
    return next;
  }

  async #rescope(scope: CostScope): Promise<void> {
    await this.#reserving?.catch(() => undefined);
    const lease = this.#lease;
    const cost = this.#cost;
    if (!lease || !cost) return;
    if (!cost.rescope) {
      this.#logger.warn(
        "the cost plugin cannot move a lease to another scope (CostHooks.rescope is missing); the pooled sandbox's lease stays charged to the pool's scope",
        { leaseId: lease.leaseId, ...scopeFields("from", this.#scope), ...scopeFields("to", scope) },
      );
      return;
    }
    try {
      await cost.rescope(lease.leaseId, scope);
      this.#scope = scope;
    } catch (err) {
      this.#logger.warn("moving the cost lease to its session failed; it keeps its old scope", {
        leaseId: lease.leaseId,
        error: String(err),
      });
    }
  }

  /**
   * Settles the lease, exactly once: the first call charges it (after a reservation or rescope still in flight),
   * every later call returns the first call's promise. Resolves undefined when there is no lease, and when the
   * cost plugin failed (logged: its sweeper settles the lease later). Never rejects.
   */
  settle(reason: string, options: { endedAtMs?: number } = {}): Promise<SettlementInfo | undefined> {
    this.#settlement ??= this.#settle(reason, options);
    return this.#settlement;
  }

  async #settle(reason: string, options: { endedAtMs?: number }): Promise<SettlementInfo | undefined> {
    this.detach();
    await this.#reserving?.catch(() => undefined);
    await this.#pending;
    const lease = this.#lease;
    const cost = this.#cost;
    if (!lease || !cost) return undefined;
    try {
      return await cost.settle(lease.leaseId, {
        reason,
        ...(options.endedAtMs !== undefined ? { endedAtMs: options.endedAtMs } : {}),
      });
    } catch (err) {
      this.#logger.warn("settling the cost lease failed", { leaseId: lease.leaseId, error: String(err) });
      return undefined;
    }
  }
}

/** A scope as log fields (ids only). */
function scopeFields(prefix: string, scope: CostScope | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (scope?.sessionId !== undefined) out[`${prefix}SessionId`] = scope.sessionId;
  if (scope?.userId !== undefined) out[`${prefix}UserId`] = scope.userId;
  return out;
}
