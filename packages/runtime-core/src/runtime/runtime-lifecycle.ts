import { inspect } from "node:util";
import type { ActionExecutionClient } from "../client/action-execution-client.js";
import type {
  CostScope,
  LeaseInfo,
  PluginContext,
  Redactor,
  ResolvedSecrets,
  SandboxCostSpec,
} from "../context.js";
import { isRuntimeError, RuntimeError } from "../errors.js";
import type { Logger } from "../logger.js";
import {
  type BaseRuntimeInit,
  clientOf,
  handleOf,
  leaseOfHandle,
  overridesOfHandle,
  type ProvisionedSandbox,
  type ProvisionRequest,
  reattachByAlive,
} from "./backend-contract.js";
import { LeaseKeeper } from "./lease-keeper.js";
import type { ResolvedSessionOverrides } from "./overrides.js";
import { combineRedactors, redactError } from "./redaction.js";
import { provisionSecretFiles } from "./secret-files.js";
import { StatusChannel } from "./status-channel.js";
import { type RuntimeCapabilities, type RuntimeHandle, RuntimeStatus, type StatusEvent } from "./types.js";

/**
 * The lifecycle half of {@link BaseRuntime} (backends extend BaseRuntime, never this class): connect (reserve the
 * lease, resolve secrets, provision, wait for readiness, write secret files), status events, disconnects, the
 * durable handle, pool hand-out and an idempotent close. The cost lease is kept by a {@link LeaseKeeper}, the
 * handle's fields by `backend-contract.ts`. The action methods live in BaseRuntime and reach the server only
 * through {@link callServer}.
 */
export abstract class RuntimeLifecycle {
  readonly backend: string;
  #sessionId: string;
  readonly capabilities: RuntimeCapabilities;
  protected readonly context: PluginContext;
  protected readonly logger: Logger;
  protected readonly init: BaseRuntimeInit;
  readonly #statusChannel = new StatusChannel(() => ({
    logger: this.logger,
    redactor: this.#redactor,
    fields: { backend: this.backend, sessionId: this.sessionId },
  }));
  #client: ActionExecutionClient | undefined;
  #sandbox: ProvisionedSandbox | undefined;
  #leases: LeaseKeeper;
  #redactor: Redactor;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #disconnected: string | undefined;
  #tearingDown = false;
  #overrides: ResolvedSessionOverrides;
  /** Secret files (git credentials...) to write while provisioning, before READY. */
  #pendingSecretFiles: ResolvedSecrets["files"] | undefined;

  constructor(init: BaseRuntimeInit) {
    this.init = init;
    this.backend = init.backend;
    this.#sessionId = init.sessionId;
    this.#overrides = Object.freeze({ ...overridesOfHandle(init.attachTo), ...init.overrides });
    this.capabilities = Object.freeze({ ...init.capabilities });
    this.context = init.context;
    this.logger = init.context.logger;
    this.#redactor = init.context.redactor;
    this.#leases = new LeaseKeeper({ cost: init.context.cost, logger: this.logger });
  }

  /** Starts the sandbox (or verifies the attached one) and returns where its action server listens. */
  protected abstract provision(request: ProvisionRequest): Promise<ProvisionedSandbox>;
  /** Stops the sandbox and frees everything it holds. Must tolerate a sandbox that is already gone. */
  protected abstract destroy(sandbox: ProvisionedSandbox, reason: string): Promise<void>;
  /** What the sandbox costs, for the cost lease; undefined means free (no lease). */
  protected costSpec(): SandboxCostSpec | undefined {
    return undefined;
  }
  /**
   * Re-attaches to the sandbox in `handle`: verify it is alive, else throw NOT_FOUND. The default checks
   * `/alive` at the handle's URL with the handle's key.
   */
  protected reattach(handle: RuntimeHandle): Promise<ProvisionedSandbox> {
    return reattachByAlive(handle);
  }
  /**
   * Called by `close()` when the sandbox is kept alive: stop watchers and timers that belong to this object
   * (the sandbox itself keeps running for a later `attach`). The default does nothing.
   */
  protected release(): void {}
  /**
   * A backend reports here that its sandbox is known dead (e.g. the child process exited), or undefined. A
   * runtime marked disconnected while this says dead settles its lease at once.
   */
  protected deathReason(): string | undefined {
    return undefined;
  }
  /**
   * Called when `connect()` fails, before the ERROR status is emitted and the sandbox is torn down: a backend
   * adds what it knows about the failed start to the error (runtime-modal adds the sandbox's last output lines
   * to the message and `details.output`). Whatever it adds must already be redacted with {@link redactor}.
   * The default returns the error unchanged.
   */
  protected explainStartFailure(error: RuntimeError): Promise<RuntimeError> | RuntimeError {
    return error;
  }

  get sessionId(): string {
    return this.#sessionId;
  }

  /**
   * Hands a ready, pooled sandbox to a session: warm pools create runtimes ahead of time under a pool id and
   * re-bind them when acquired. The cost lease moves to the new session (and the overrides' `userId`) through
   * `CostHooks.rescope`; a cost plugin without it keeps charging the pool's scope (logged). Only valid while no
   * action has run for another session.
   */
  rebind(sessionId: string, overrides?: ResolvedSessionOverrides): void {
    this.#sessionId = sessionId;
    // Only what does not shape the sandbox can change here (labels): providers bypass the pool otherwise.
    if (overrides) this.#overrides = Object.freeze({ ...overrides });
    if (this.#leases.lease) void this.#leases.rescope(this.#costScope());
  }

  /** Who the lease is charged to: the session, the overrides' user, then `init.costScope`. */
  #costScope(): CostScope {
    return {
      sessionId: this.sessionId,
      ...(this.#overrides.userId !== undefined ? { userId: this.#overrides.userId } : {}),
      ...this.init.costScope,
    };
  }

  get status(): RuntimeStatus {
    return this.#statusChannel.status;
  }

  /** The session's overrides (from `create`, or from the handle after `attach`); `{}` when none. */
  get overrides(): ResolvedSessionOverrides {
    return this.#overrides;
  }

  /** The session's labels (`overrides.labels`); `{}` when none. */
  get labels(): Readonly<Record<string, string>> {
    return this.#overrides.labels ?? {};
  }

  /** The redactor applied to observations, status messages and errors of this runtime. */
  get redactor(): Redactor {
    return this.#redactor;
  }

  /** The provisioned sandbox, once connected. */
  protected get sandbox(): ProvisionedSandbox | undefined {
    return this.#sandbox;
  }

  /** The cost lease, once reserved (or adopted from the handle); still set after it was settled. */
  get lease(): LeaseInfo | undefined {
    return this.#leases.lease;
  }

  onStatus(listener: (event: StatusEvent) => void): () => void {
    return this.#statusChannel.subscribe(listener);
  }

  protected emitStatus(status: RuntimeStatus, message = "", level: StatusEvent["level"] = "info"): void {
    this.#statusChannel.emit(status, message, level);
  }

  /**
   * Tells the runtime its sandbox is gone: status ERROR_RUNTIME_DISCONNECTED and every later call fails
   * with DISCONNECTED at once. When the backend knows the sandbox is dead ({@link deathReason}), billing has
   * stopped: the lease is settled now, even if the host never calls close() (close settles the same settlement).
   */
  protected markDisconnected(reason: string): void {
    // A sandbox we are stopping is not "lost": teardown settles the lease with its own reason.
    if (this.#closing || this.#tearingDown) return;
    if (!this.#disconnected) {
      this.#disconnected = reason;
      this.emitStatus(RuntimeStatus.ERROR_RUNTIME_DISCONNECTED, reason, "error");
    }
    const dead = this.deathReason();
    if (dead) void this.#leases.settle(`sandbox gone: ${this.#redactor.redact(dead)}`);
  }

  connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closing) {
      return Promise.reject(
        new RuntimeError("FAILED_PRECONDITION", "This runtime is closed; create a new one."),
      );
    }
    this.#connecting ??= this.#connect(options.signal).catch((err: unknown) => {
      this.#connecting = undefined;
      throw err;
    });
    return this.#connecting;
  }

  async #connect(signal?: AbortSignal): Promise<void> {
    const attach = this.init.attachTo;
    try {
      let sandbox: ProvisionedSandbox;
      if (attach) {
        if (attach.backend !== this.backend) {
          throw new RuntimeError(
            "INVALID_ARGUMENT",
            `handle.backend: this handle belongs to the "${attach.backend}" backend, not "${this.backend}"`,
          );
        }
        this.emitStatus(RuntimeStatus.STARTING_RUNTIME, "re-attaching");
        sandbox = await this.reattach(attach);
        const lease = leaseOfHandle(attach);
        if (lease) this.#leases.adopt(lease);
      } else {
        const lease = await this.#leases.reserve({
          spec: this.costSpec(),
          scope: this.#costScope(),
          lifetimeMs: this.init.lifetimeMs ?? 3_600_000,
        });
        let secrets: ResolvedSecrets | undefined;
        if (this.context.secrets) {
          secrets = await this.context.secrets.resolve({ sessionId: this.sessionId });
          this.#redactor = combineRedactors(this.context.redactor, secrets.redactor);
          this.#pendingSecretFiles = secrets.files;
        }
        this.emitStatus(RuntimeStatus.STARTING_RUNTIME);
        sandbox = await this.provision({
          ...(lease ? { leaseId: lease.leaseId } : {}),
          ...(secrets ? { secrets } : {}),
          ...(signal ? { signal } : {}),
        });
        this.#sandbox = sandbox;
        this.emitStatus(RuntimeStatus.RUNTIME_STARTED);
        await this.#leases.activate(sandbox.sandboxId);
        this.#leases.onTerminate(async (reason) => {
          this.logger.warn("cost guard stops this sandbox", { sessionId: this.sessionId, reason });
          this.emitStatus(RuntimeStatus.BUDGET_EXCEEDED, reason, "error");
          // Stopped even when kept alive: the cost plugin asked for the sandbox to end.
          await this.#close(`stopped by the cost plugin: ${reason}`, true);
        });
      }
      this.#sandbox = sandbox;
      this.#client = clientOf(sandbox, {
        logger: this.logger,
        ...(this.init.defaultActionTimeoutMs
          ? { defaultActionTimeoutMs: this.init.defaultActionTimeoutMs }
          : {}),
      });
      await this.#client.waitUntilAlive({
        deadlineMs: attach ? Math.min(this.init.startupTimeoutMs, 10_000) : this.init.startupTimeoutMs,
        ...(signal ? { signal } : {}),
        isDead: () => this.deathReason(),
      });
      if (!attach) {
        // Provisioning, not an action: the public methods require READY, and READY means the files are there.
        const files = this.#pendingSecretFiles;
        this.#pendingSecretFiles = undefined;
        await provisionSecretFiles(this.#client, files, signal ? { signal } : {});
      }
      this.emitStatus(RuntimeStatus.READY);
    } catch (err) {
      let error = redactError(err, this.#redactor);
      try {
        error = await this.explainStartFailure(error);
      } catch (explainErr) {
        this.logger.debug("explaining a failed start failed", { error: String(explainErr) });
      }
      this.emitStatus(
        isRuntimeError(error, "BUDGET_EXCEEDED") ? RuntimeStatus.BUDGET_EXCEEDED : RuntimeStatus.ERROR,
        error.message,
        "error",
      );
      // A failure at any step leaves nothing behind: stop what was created, settle the lease.
      if (!attach) {
        await this.#teardown("connect failed");
        // connect() may be called again: its sandbox gets a lease of its own.
        this.#tearingDown = false;
        this.#leases = new LeaseKeeper({ cost: this.context.cost, logger: this.logger });
      } else {
        this.#client?.close();
        this.#client = undefined;
        this.#sandbox = undefined;
      }
      throw error;
    }
  }

  /** The client of a READY runtime; FAILED_PRECONDITION (closed, not connected) or DISCONNECTED otherwise. */
  protected requireClient(): ActionExecutionClient {
    if (this.#closing)
      throw new RuntimeError("FAILED_PRECONDITION", "This runtime is closed; create a new one.");
    if (this.#disconnected) {
      throw new RuntimeError(
        "DISCONNECTED",
        `The ${this.backend} sandbox is gone (${this.#disconnected}); create a new runtime.`,
      );
    }
    if (!this.#client || this.status !== RuntimeStatus.READY) {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "The runtime is not connected; call connect() first and wait for it.",
      );
    }
    return this.#client;
  }

  /**
   * Every call to the action server goes through here: it requires a READY runtime, maps a disconnect to
   * DISCONNECTED (and the status), redacts errors, and heartbeats the lease.
   */
  protected async callServer<T>(fn: (client: ActionExecutionClient) => Promise<T>): Promise<T> {
    const client = this.requireClient();
    try {
      return await fn(client);
    } catch (err) {
      const dead = this.#disconnected ?? this.deathReason();
      if (dead || isRuntimeError(err, "DISCONNECTED")) {
        this.markDisconnected(dead ?? (err as Error).message);
        throw new RuntimeError(
          "DISCONNECTED",
          `The ${this.backend} sandbox is gone (${this.#redactor.redact(dead ?? (err as Error).message)}); create a new runtime.`,
          { cause: err },
        );
      }
      throw redactError(err, this.#redactor);
    } finally {
      if (!this.#closing) this.#leases.heartbeat();
    }
  }

  handle(): RuntimeHandle {
    const sandbox = this.#sandbox;
    if (!sandbox)
      throw new RuntimeError("FAILED_PRECONDITION", "No sandbox yet: call connect() before handle().");
    return handleOf(sandbox, {
      backend: this.backend,
      sessionId: this.sessionId,
      overrides: this.#overrides,
      lease: this.#leases.lease,
    });
  }

  close(): Promise<void> {
    return this.#close("closed", false);
  }

  /** Closes once; `force` tears the sandbox down even when it is kept alive (a stop by the cost plugin). */
  #close(reason: string, force: boolean): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#connecting) await this.#connecting.catch(() => undefined);
      if (!force && this.init.keepAlive && this.#sandbox && !this.#disconnected) {
        // This object stops acting for the sandbox: the cost guard must use its inventory to stop it now.
        this.#leases.detach();
        this.release();
        this.#client?.close();
        this.logger.info("runtime closed; sandbox kept alive", {
          backend: this.backend,
          sessionId: this.sessionId,
        });
      } else {
        await this.#teardown(reason);
      }
      this.emitStatus(RuntimeStatus.STOPPED);
    })();
    return this.#closing;
  }

  /** Stops the sandbox, then settles the lease (once, whoever else asked already). */
  async #teardown(reason: string): Promise<void> {
    this.#tearingDown = true;
    this.#leases.detach();
    const sandbox = this.#sandbox;
    this.#client?.close();
    this.#client = undefined;
    this.#sandbox = undefined;
    if (sandbox) {
      try {
        await this.destroy(sandbox, reason);
      } catch (err) {
        this.logger.warn("destroying the sandbox failed", {
          backend: this.backend,
          sandboxId: sandbox.sandboxId,
          error: this.#redactor.redact(String(err)),
        });
      }
    }
    await this.#leases.settle(reason);
  }

  toJSON(): Record<string, unknown> {
    return { backend: this.backend, sessionId: this.sessionId, status: this.status };
  }

  [inspect.custom](): string {
    return `${this.constructor.name} ${JSON.stringify(this.toJSON())}`;
  }
}
