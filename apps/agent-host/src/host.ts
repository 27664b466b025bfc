import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import {
  checkRenamedOptions,
  isRuntimeError,
  type Logger,
  noopRedactor,
  parseAction,
  parseOrThrow,
  quietLogger,
  RENAMED_OVERRIDES,
  type Redactor,
  type Runtime,
  RuntimeError,
  type RuntimeHandle,
  RuntimeStatus,
  type StatusEvent,
  serializeAction,
  serializeObservation,
  toRuntimeError,
} from "@agent-runtime/runtime-core";
import type { CostGroup, CostsView, CreateSessionInput, SessionView, TaskView } from "./api/schemas.js";
import { CreateSessionBodySchema } from "./api/schemas.js";
import { type ComposedPlugins, type ComposeOptions, composePlugins } from "./compose.js";
import { logSandboxLifecycle } from "./lifecycle-log.js";
import type { ResolvedHostConfig } from "./options.js";
import { combineRedactors, HostRedactor, redactedLogger, runtimeRedactor } from "./redaction.js";
import { defaultStateDir, ensurePrivateFile, ensureStateDir, tightenDatabaseFiles } from "./state-dir.js";
import {
  type ErrorInfo,
  type EventRecord,
  HostStore,
  type SessionRecord,
  type SessionState,
  type StoredOverrides,
  type TaskRecord,
} from "./store.js";

/** What {@link AgentHost.open} needs besides the configuration. */
export interface AgentHostOptions extends ComposeOptions {
  /** Use these plugins instead of composing them from the configuration (the host then closes them). */
  plugins?: ComposedPlugins;
  /** Environment for the default state directory (`XDG_STATE_HOME`, `HOME`). @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/** File name of the database in the state directory when `storage.path` is not set. */
export const DATABASE_FILE_NAME = "agent-host.db";

/** A session event as delivered to subscribers (and over SSE). */
export type HostEvent = EventRecord;

/** One session with a runtime in this process. */
interface LiveSession {
  id: string;
  runtime: Runtime | undefined;
  ready: Promise<Runtime>;
  chain: Promise<void>;
  queued: number;
  abort: AbortController;
  closing: Promise<SessionView> | undefined;
  unsubscribeStatus: (() => void) | undefined;
  /** What the host stores, streams and logs about this session goes through it (the session's secrets). */
  redactor: Redactor;
  /** Settles once the runtime is ready, or its failure has been recorded. */
  settled: Promise<void>;
}

/** Message of tasks found unfinished when the host starts. */
export const INTERRUPTED_RUNNING =
  "Interrupted by host restart: the host stopped while this action was running, so whether it took effect in the sandbox is unknown. Inspect the sandbox and submit the action again if needed.";
/** Message of queued tasks found when the host starts. */
export const INTERRUPTED_QUEUED =
  "Interrupted by host restart: the host stopped before this queued action started; it never ran. Submit it again.";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("base64url")}`;

/** A secret-free error for storage and the API (`redactor` scrubs values the error may quote). */
export function errorInfo(err: unknown, redactor: Redactor = noopRedactor): ErrorInfo {
  const e = toRuntimeError(err);
  const info = { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
  return redactor.isEmpty ? info : redactor.redactDeep(info);
}

/** The cost lease a runtime holds (runtime-core's `BaseRuntime.lease`), or in its handle. */
function leaseIdOf(runtime: Runtime | undefined, handle?: RuntimeHandle): string | undefined {
  const fromRuntime = (runtime as { lease?: { leaseId?: unknown } } | undefined)?.lease?.leaseId;
  if (typeof fromRuntime === "string") return fromRuntime;
  const fromHandle = handle?.data.leaseId;
  return typeof fromHandle === "string" ? fromHandle : undefined;
}

/**
 * Resolves once `runtime` is past its cost reservation: the sandbox is being started (`STARTING_RUNTIME` or
 * later), or `connect` settled (`undefined`, or the error it failed with, e.g. BUDGET_EXCEEDED).
 */
function pastReservation(runtime: Runtime, connecting: Promise<unknown>): Promise<unknown> {
  const past: ReadonlySet<string> = new Set([
    RuntimeStatus.STARTING_RUNTIME,
    RuntimeStatus.RUNTIME_STARTED,
    RuntimeStatus.READY,
  ]);
  return new Promise((done) => {
    const off = runtime.onStatus((event) => {
      if (!past.has(event.status)) return;
      off();
      done(undefined);
    });
    connecting.then(
      () => {
        off();
        done(undefined);
      },
      (err: unknown) => {
        off();
        done(err);
      },
    );
  });
}

const BUDGET_NUMBERS = [
  "budget",
  "scopeKey",
  "periodKey",
  "limitUsd",
  "spentUsd",
  "reservedUsd",
  "requestedUsd",
] as const;

/** The 402 of `POST /v1/sessions`: the budget's refusal with its numbers (USD) and what to do about it. */
function budgetRefusal(sessionId: string, err: unknown): RuntimeError {
  const e = toRuntimeError(err);
  const details: Record<string, unknown> = { currency: "USD" };
  for (const key of BUDGET_NUMBERS) if (e.details?.[key] !== undefined) details[key] = e.details[key];
  return new RuntimeError(
    "BUDGET_EXCEEDED",
    `Session "${sessionId}" was not created: ${e.message} To free reserved money, delete sessions you no longer need (DELETE /v1/sessions/{id}); or raise the budget in cost.options.budgets.`,
    { details, cause: err },
  );
}

/** A provider's refusal of the create body, its issues rooted at `body` like the host's own (`body.gpu: ...`). */
function bodyIssues(err: unknown): unknown {
  if (!isRuntimeError(err) || !Array.isArray(err.details?.issues)) return err;
  const issues = (err.details.issues as unknown[]).map((issue) => `body.${String(issue)}`);
  return new RuntimeError(err.code, err.message, { details: { ...err.details, issues }, cause: err });
}

/**
 * The reference host: sessions (one runtime each) fed by asynchronous tasks, durable in SQLite. Actions of a
 * session run one at a time in submission order; results, session handles and an event log are stored, so a
 * restarted host keeps finished results, re-attaches to live sandboxes and marks interrupted tasks failed.
 *
 * @example
 * ```ts
 * const host = await AgentHost.open(parseHostConfig({ storage: { stateDir: "/var/lib/agent-host" } }));
 * const session = await host.createSession({});
 * const task = host.submitAction(session.id, { action: "run", args: { command: "ls" } });
 * console.log((await host.waitTask(task.id, 30_000)).observation);
 * await host.close();
 * ```
 */
export class AgentHost {
  readonly config: ResolvedHostConfig;
  readonly plugins: ComposedPlugins;
  readonly store: HostStore;
  /** The host's logger: every line goes through the secrets of every open session first. */
  readonly logger: Logger;
  /** The private state directory (absolute; created 0700 by {@link AgentHost.ensureStateDir} when first needed). */
  readonly stateDir: string;
  /** Settles once every session open at startup has re-attached or failed to. */
  readonly recovered: Promise<void>;
  readonly #live = new Map<string, LiveSession>();
  /** Ids of sessions being created (between the request and their record). */
  readonly #pending = new Set<string>();
  readonly #redactors: HostRedactor;
  readonly #taskWaiters = new Map<string, Set<() => void>>();
  readonly #sessionWaiters = new Map<string, Set<() => void>>();
  readonly #subscribers = new Map<string, Set<(event: HostEvent | null) => void>>();
  #stateDirReady = false;
  #closed = false;

  private constructor(
    config: ResolvedHostConfig,
    plugins: ComposedPlugins,
    store: HostStore,
    logger: Logger,
    init: {
      stateDir: string;
      stateDirReady: boolean;
      redactors: HostRedactor;
      recoveryRedactors: Map<string, Redactor>;
    },
  ) {
    this.config = config;
    this.plugins = plugins;
    this.store = store;
    this.logger = logger;
    this.stateDir = init.stateDir;
    this.#stateDirReady = init.stateDirReady;
    this.#redactors = init.redactors;
    this.recovered = this.#recover(init.recoveryRedactors);
  }

  /**
   * Composes the plugins, opens the store and recovers what a previous run left. The state directory
   * (`storage.stateDir`, default {@link defaultStateDir}) is created 0700 when the database lives there.
   */
  static async open(config: ResolvedHostConfig, options: AgentHostOptions = {}): Promise<AgentHost> {
    const stateDir = resolve(config.storage.stateDir ?? defaultStateDir(options.env));
    const path = config.storage.path ?? join(ensureStateDir(stateDir), DATABASE_FILE_NAME);
    const redactors = new HostRedactor();
    const logger = redactedLogger(options.logger ?? quietLogger, redactors);
    const store = new HostStore(path);
    const defaultLedger =
      options.defaultLedgerPath === undefined && store.path !== ":memory:"
        ? `${store.path}.costs`
        : undefined;
    // The ledger agent-host places is private from its first byte (SQLite gives -wal/-shm the file's mode).
    const ownLedger =
      defaultLedger !== undefined &&
      !options.plugins &&
      config.cost.enabled &&
      config.cost.plugin === "cost-guard" &&
      config.cost.options.ledgerPath === undefined;
    let plugins: ComposedPlugins;
    try {
      if (ownLedger) ensurePrivateFile(defaultLedger);
      plugins =
        options.plugins ??
        (await composePlugins(config, {
          ...options,
          logger,
          ...(defaultLedger !== undefined ? { defaultLedgerPath: defaultLedger } : {}),
        }));
      if (ownLedger) tightenDatabaseFiles(defaultLedger);
    } catch (err) {
      store.close();
      throw err;
    }
    const init = {
      stateDir,
      stateDirReady: config.storage.path === undefined,
      redactors,
      recoveryRedactors: new Map<string, Redactor>(),
    };
    try {
      await AgentHost.#resolveRecoveryRedactors(store, plugins, logger, init.recoveryRedactors);
    } catch (err) {
      await plugins.close().catch(() => undefined);
      store.close();
      throw err;
    }
    return new AgentHost(config, plugins, store, logger, init);
  }

  /**
   * Re-attached runtimes do not resolve their secrets again, so the host does it for each session it will
   * re-attach, before it accepts requests: what it stores about them stays redacted. A session whose secrets
   * cannot be resolved gets no entry (its re-attach is refused in recovery).
   */
  static async #resolveRecoveryRedactors(
    store: HostStore,
    plugins: ComposedPlugins,
    logger: Logger,
    out: Map<string, Redactor>,
  ): Promise<void> {
    const secrets = plugins.secrets;
    for (const session of store.openSessions()) {
      if (session.state !== "ready" || !store.handleOf(session.id)) continue;
      if (!secrets) {
        out.set(session.id, noopRedactor);
        continue;
      }
      try {
        out.set(session.id, (await secrets.resolve({ sessionId: session.id })).redactor);
      } catch (err) {
        logger.warn("resolving a session's secrets for re-attach failed", {
          sessionId: session.id,
          code: errorInfo(err).code,
        });
      }
    }
  }

  /** Creates (or checks and tightens) the state directory, mode 0700; returns its path. */
  ensureStateDir(): string {
    if (!this.#stateDirReady) {
      ensureStateDir(this.stateDir);
      this.#stateDirReady = true;
    }
    return this.stateDir;
  }

  /** Backend name of the runtime provider. */
  get backend(): string {
    return this.plugins.provider.backend;
  }

  /** Sessions starting or ready in this process. */
  get openSessionCount(): number {
    let n = 0;
    for (const live of this.#live.values()) if (!live.closing) n++;
    return n;
  }

  #now(): number {
    return Date.now();
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "The host is shutting down; retry against the restarted host.",
      );
  }

  // ---------------------------------------------------------------- views

  #sessionView(record: SessionRecord): SessionView {
    return {
      id: record.id,
      backend: record.backend,
      status: record.state,
      runtimeStatus: record.runtimeStatus,
      labels: record.labels,
      userId: record.overrides.userId ?? null,
      overrides: Object.fromEntries(Object.entries(record.overrides).filter(([key]) => key !== "userId")),
      error: record.error,
      tasks: this.store.taskCounts(record.id),
      createdAt: iso(record.createdAtMs)!,
      updatedAt: iso(record.updatedAtMs)!,
      readyAt: iso(record.readyAtMs),
      closedAt: iso(record.closedAtMs),
    };
  }

  #taskView(record: TaskRecord): TaskView {
    return {
      id: record.id,
      sessionId: record.sessionId,
      seq: record.seq,
      status: record.state,
      action: record.action,
      observation: record.observation,
      error: record.error,
      createdAt: iso(record.createdAtMs)!,
      startedAt: iso(record.startedAtMs),
      finishedAt: iso(record.finishedAtMs),
      durationMs:
        record.startedAtMs !== null && record.finishedAtMs !== null
          ? record.finishedAtMs - record.startedAtMs
          : null,
    };
  }

  #requireSession(id: string): SessionRecord {
    const record = this.store.getSession(id);
    if (!record)
      throw new RuntimeError("NOT_FOUND", `No session "${id}"; list sessions with GET /v1/sessions.`);
    return record;
  }

  // ---------------------------------------------------------------- events and waiters

  #emit(sessionId: string, type: string, data: Record<string, unknown>): void {
    if (this.#closed) return;
    const event = this.store.appendEvent(sessionId, type, data, this.#now());
    for (const listener of this.#subscribers.get(sessionId) ?? []) listener(event);
  }

  #notify(map: Map<string, Set<() => void>>, key: string): void {
    const set = map.get(key);
    if (!set) return;
    map.delete(key);
    for (const wake of set) wake();
  }

  async #wait(
    map: Map<string, Set<() => void>>,
    key: string,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const ms = Math.min(waitMs, this.config.server.maxWaitMs);
    if (ms <= 0 || this.#closed) return;
    await new Promise<void>((resolve) => {
      const set = map.get(key) ?? new Set<() => void>();
      map.set(key, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #setSessionState(id: string, state: SessionState, options: { error?: ErrorInfo | null } = {}): void {
    if (this.#closed) return;
    this.store.updateSession(id, state, this.#now(), options);
    const record = this.store.getSession(id);
    if (record) this.#emit(id, "session", { session: this.#sessionView(record) });
    this.#notify(this.#sessionWaiters, id);
    if (state === "closed") for (const listener of this.#subscribers.get(id) ?? []) listener(null);
  }

  #taskChanged(id: string): void {
    const task = this.store.getTask(id);
    if (!task) return;
    this.#emit(task.sessionId, "task", { task: this.#taskView(task) });
    if (task.state !== "queued" && task.state !== "running") this.#notify(this.#taskWaiters, id);
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Creates a session and starts its sandbox. Resolves in status `starting` as soon as the sandbox's cost is
   * reserved and its secrets are resolved (the sandbox itself starts in the background). Throws
   * INVALID_ARGUMENT (bad body), ALREADY_EXISTS (id taken), RATE_LIMITED (`sessions.maxSessions`),
   * BUDGET_EXCEEDED (a budget cannot fit the sandbox's worst-case cost: nothing is stored or started, and
   * `details` holds the budget's `limitUsd`, `spentUsd`, `reservedUsd`, `requestedUsd`, `currency`).
   */
  async createSession(input: CreateSessionInput | unknown = {}): Promise<SessionView> {
    this.#assertOpen();
    try {
      checkRenamedOptions(input, RENAMED_OVERRIDES, "session");
    } catch (err) {
      throw bodyIssues(err);
    }
    const body = parseOrThrow(CreateSessionBodySchema, input ?? {}, "session", "body");
    const open = this.openSessionCount + this.#pending.size;
    if (open >= this.config.sessions.maxSessions) {
      throw new RuntimeError(
        "RATE_LIMITED",
        `${open} sessions are open, the limit (sessions.maxSessions) is ${this.config.sessions.maxSessions}; delete a session or raise the limit.`,
      );
    }
    const id = body.id ?? newId("s");
    if (this.#pending.has(id) || this.store.getSession(id)) {
      throw new RuntimeError(
        "ALREADY_EXISTS",
        `A session with id "${id}" already exists; pick another id or omit it.`,
      );
    }
    this.#pending.add(id);
    try {
      const { id: _id, labels, ...overrides } = body;
      return await this.#create(id, labels, overrides);
    } finally {
      this.#pending.delete(id);
    }
  }

  async #create(
    id: string,
    labels: Record<string, string>,
    overrides: StoredOverrides,
  ): Promise<SessionView> {
    const live = this.#newLive(id);
    // The provider validates the overrides against its backend (INVALID_ARGUMENT, UNSUPPORTED naming the field).
    const runtime = await this.plugins.provider
      .create({ sessionId: id, ...overrides, ...(Object.keys(labels).length > 0 ? { labels } : {}) })
      .catch((err: unknown) => {
        throw bodyIssues(err);
      });
    live.runtime = runtime;
    logSandboxLifecycle(runtime, this.logger, { sessionId: id, backend: this.backend });
    // Status events before the record exists are kept and replayed after the `session` event.
    const early: StatusEvent[] = [];
    let recording = false;
    live.unsubscribeStatus = runtime.onStatus((event) => {
      if (recording) this.#onStatus(live, event);
      else early.push(event);
    });
    const connecting = runtime.connect({ signal: live.abort.signal });
    const outcome = await pastReservation(runtime, connecting);
    const discard = async () => {
      live.unsubscribeStatus?.();
      live.abort.abort();
      await runtime.close().catch(() => undefined);
    };
    if (isRuntimeError(outcome, "BUDGET_EXCEEDED")) {
      await discard();
      throw budgetRefusal(id, outcome);
    }
    let record: SessionRecord;
    try {
      this.#assertOpen();
      live.redactor = runtimeRedactor(runtime) ?? (await this.#resolveRedactor(id));
      this.#assertOpen();
      record = this.store.insertSession({
        id,
        backend: this.backend,
        labels: live.redactor.redactDeep(labels),
        overrides: live.redactor.redactDeep(overrides),
        nowMs: this.#now(),
      });
    } catch (err) {
      await discard();
      throw err;
    }
    this.#redactors.set(id, live.redactor);
    const leaseId = leaseIdOf(runtime);
    if (leaseId) this.store.setLeaseId(id, leaseId);
    this.#live.set(id, live);
    this.#emit(id, "session", { session: this.#sessionView(record) });
    recording = true;
    for (const event of early) this.#onStatus(live, event);
    this.#follow(
      live,
      connecting.then(() => runtime),
      "create",
    );
    return this.#sessionView(record);
  }

  /** A redactor for a session's secrets resolved by the host itself (runtimes that do not expose theirs). */
  async #resolveRedactor(sessionId: string): Promise<Redactor> {
    if (!this.plugins.secrets) return noopRedactor;
    return (await this.plugins.secrets.resolve({ sessionId })).redactor;
  }

  #newLive(id: string): LiveSession {
    return {
      id,
      runtime: undefined,
      ready: Promise.resolve(undefined as unknown as Runtime),
      chain: Promise.resolve(),
      queued: 0,
      abort: new AbortController(),
      closing: undefined,
      unsubscribeStatus: undefined,
      redactor: noopRedactor,
      settled: Promise.resolve(),
    };
  }

  /** Re-attaches a session to its sandbox after a restart; `redactor` holds its secrets, resolved at open. */
  #attach(id: string, handle: RuntimeHandle, redactor: Redactor): LiveSession {
    const live = this.#newLive(id);
    live.redactor = redactor;
    this.#redactors.set(id, redactor);
    this.#live.set(id, live);
    const connecting = (async () => {
      const runtime = await this.plugins.provider.attach(handle);
      live.runtime = runtime;
      logSandboxLifecycle(runtime, this.logger, { sessionId: id, backend: this.backend, mode: "attach" });
      live.redactor = combineRedactors(runtimeRedactor(runtime), redactor);
      this.#redactors.set(id, live.redactor);
      live.unsubscribeStatus = runtime.onStatus((event) => this.#onStatus(live, event));
      await runtime.connect({ signal: live.abort.signal });
      return runtime;
    })();
    this.#follow(live, connecting, "attach");
    return live;
  }

  /** Records where a connecting runtime ends up: `ready` (with its handle), or `error` (lease settled if lost). */
  #follow(live: LiveSession, connecting: Promise<Runtime>, mode: "create" | "attach"): void {
    const id = live.id;
    live.ready = (async () => {
      const runtime = await connecting;
      if (live.closing || this.#closed) return runtime;
      const handle = runtime.capabilities.attach ? runtime.handle() : undefined;
      // The handle is stored: labels or env given with the session may quote a secret (the session key in it
      // is a credential of ours, and stays).
      if (handle) this.store.setHandle(id, live.redactor.redactDeep(handle), this.#now());
      const leaseId = leaseIdOf(runtime, handle);
      if (leaseId) this.store.setLeaseId(id, leaseId);
      this.store.setRuntimeStatus(id, runtime.status, this.#now());
      this.#setSessionState(id, "ready", { error: null });
      return runtime;
    })();
    live.settled = live.ready.then(
      () => undefined,
      async (err: unknown) => {
        if (live.closing || this.#closed) return;
        const info = errorInfo(err, live.redactor);
        if (mode === "attach") {
          info.message = `The sandbox did not survive the host restart and cannot be re-attached: ${info.message} Delete this session and create a new one.`;
        }
        this.logger.warn("session failed to start", { sessionId: id, code: info.code });
        const handle = this.store.handleOf(id);
        this.store.setHandle(id, null, this.#now());
        this.#setSessionState(id, "error", { error: info });
        this.#live.delete(id);
        this.#redactors.delete(id);
        void live.runtime?.close().catch(() => undefined);
        // A runtime that failed to re-attach holds no lease: the lost sandbox's lease is settled here.
        if (mode === "attach")
          await this.#settleLostLease(id, handle, "sandbox lost while the host was down");
      },
    );
    live.chain = live.settled;
  }

  /**
   * Settles the cost lease of a session whose sandbox is gone and that no runtime in this process holds (it
   * would otherwise stay `active`, its reservation counted against budgets forever). The lease is the one
   * recorded for the session or in its handle; one already settled, or unknown to the ledger, is left alone.
   * The sandbox's end is unknown: as cost-guard's orphan sweep does, it is charged up to now, at most its
   * reserved lifetime.
   */
  async #settleLostLease(
    sessionId: string,
    handle: RuntimeHandle | undefined,
    reason: string,
  ): Promise<void> {
    const cost = this.plugins.cost;
    if (!cost) return;
    const leaseIds = new Set<string>();
    const fromHandle = leaseIdOf(undefined, handle);
    if (fromHandle) leaseIds.add(fromHandle);
    const recorded = this.store.leaseOf(sessionId);
    if (recorded) leaseIds.add(recorded);
    for (const leaseId of leaseIds) {
      try {
        const lease = cost.getLease?.(leaseId);
        if (cost.getLease && (!lease || lease.status === "settled")) continue;
        const endedAtMs = lease ? Math.min(this.#now(), lease.createdAtMs + lease.lifetimeMs) : undefined;
        await cost.settle(leaseId, { reason, ...(endedAtMs !== undefined ? { endedAtMs } : {}) });
        this.logger.info("settled the cost lease of a lost sandbox", { sessionId, leaseId });
      } catch (err) {
        this.logger.warn("settling the cost lease of a lost sandbox failed", {
          sessionId,
          leaseId,
          code: errorInfo(err).code,
        });
      }
    }
  }

  #onStatus(live: LiveSession, raw: StatusEvent): void {
    if (this.#closed) return;
    const event = live.redactor.isEmpty ? raw : { ...raw, message: live.redactor.redact(raw.message) };
    this.store.setRuntimeStatus(live.id, event.status, event.at);
    this.#emit(live.id, "status", { ...event });
    const gone =
      event.status === RuntimeStatus.ERROR_RUNTIME_DISCONNECTED ||
      event.status === RuntimeStatus.BUDGET_EXCEEDED;
    if (gone && !live.closing && this.store.getSession(live.id)?.state === "ready") {
      const code = event.status === RuntimeStatus.BUDGET_EXCEEDED ? "BUDGET_EXCEEDED" : "DISCONNECTED";
      this.store.setHandle(live.id, null, this.#now());
      this.#setSessionState(live.id, "error", {
        error: { code, message: `${event.message} Delete this session and create a new one.` },
      });
    }
  }

  /** Every session known to the store (also closed ones), oldest first. */
  listSessions(): SessionView[] {
    return this.store.listSessions().map((r) => this.#sessionView(r));
  }

  /** One session; NOT_FOUND for an unknown id. */
  getSession(id: string): SessionView {
    return this.#sessionView(this.#requireSession(id));
  }

  /** Like {@link getSession}, but waits up to `waitMs` while the session is `starting` or `closing`. */
  async waitSession(id: string, waitMs: number, signal?: AbortSignal): Promise<SessionView> {
    const deadline = Date.now() + Math.min(waitMs, this.config.server.maxWaitMs);
    for (;;) {
      const record = this.#requireSession(id);
      const left = deadline - Date.now();
      if (
        (record.state !== "starting" && record.state !== "closing") ||
        left <= 0 ||
        signal?.aborted ||
        this.#closed
      ) {
        return this.#sessionView(record);
      }
      await this.#wait(this.#sessionWaiters, id, left, signal);
    }
  }

  /**
   * Closes a session: queued tasks are cancelled, the running one is abandoned, the sandbox is stopped.
   * Idempotent for closed sessions; NOT_FOUND for an unknown id.
   */
  deleteSession(id: string): Promise<SessionView> {
    const record = this.#requireSession(id);
    if (record.state === "closed") return Promise.resolve(this.#sessionView(record));
    const live = this.#live.get(id);
    if (live?.closing) return live.closing;
    const closing = this.#close(id, live);
    if (live) live.closing = closing;
    return closing;
  }

  async #close(id: string, live: LiveSession | undefined): Promise<SessionView> {
    this.#setSessionState(id, "closing", { error: this.store.getSession(id)?.error ?? null });
    for (const task of this.store.queuedTasks(id)) {
      const error = { code: "CANCELLED", message: "The session was deleted before this action started." };
      if (this.store.finishTask(task.id, "cancelled", this.#now(), { error })) this.#taskChanged(task.id);
    }
    if (live) {
      live.abort.abort();
      await live.ready.catch(() => undefined);
      try {
        await live.runtime?.close();
      } catch (err) {
        this.logger.warn("closing the runtime failed", { sessionId: id, code: errorInfo(err).code });
      }
      live.unsubscribeStatus?.();
      await live.chain;
      this.#live.delete(id);
    } else {
      await this.#closeDetached(id);
    }
    this.#redactors.delete(id);
    this.store.setHandle(id, null, this.#now());
    this.#setSessionState(id, "closed", { error: this.store.getSession(id)?.error ?? null });
    return this.#sessionView(this.#requireSession(id));
  }

  /**
   * Closes a session no runtime in this process holds. A sandbox that still runs (its handle was kept) is
   * re-attached and stopped, which settles its lease; a lost one has its lease settled here. A session of
   * another backend is left to that backend.
   */
  async #closeDetached(id: string): Promise<void> {
    const handle = this.store.handleOf(id);
    if (handle && handle.backend !== this.backend) {
      // Its sandbox may still run on the other backend: its lease stays with it (and cost-guard's sweeper).
      this.logger.warn("deleted a session of another backend without stopping its sandbox", {
        sessionId: id,
        backend: handle.backend,
      });
      return;
    }
    if (handle) {
      try {
        const runtime = await this.plugins.provider.attach(handle);
        try {
          await runtime.connect();
        } finally {
          await runtime.close();
        }
      } catch (err) {
        this.logger.info("the sandbox of a deleted session was gone", {
          sessionId: id,
          code: errorInfo(err).code,
        });
      }
    }
    await this.#settleLostLease(id, handle, "session deleted; its sandbox was gone");
  }

  // ---------------------------------------------------------------- tasks

  /**
   * Queues an action (OpenHands wire form, e.g. `{ action: "run", args: { command: "ls" } }`) on a session
   * and returns the task at once. Throws NOT_FOUND (session), INVALID_ARGUMENT (issues as `body.<path>`),
   * FAILED_PRECONDITION (session not starting or ready), RATE_LIMITED (`sessions.maxQueuedTasks`).
   */
  submitAction(sessionId: string, input: unknown): TaskView {
    this.#assertOpen();
    const session = this.#requireSession(sessionId);
    // The sandbox gets the action as given; the host keeps (and streams) it with the session's secrets redacted.
    const action = serializeAction(parseAction(input, "body"));
    const live = this.#live.get(sessionId);
    if (!live || live.closing || (session.state !== "starting" && session.state !== "ready")) {
      const why = session.error ? `: ${session.error.message}` : "";
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `Session "${sessionId}" is ${session.state}${why}; actions need a starting or ready session.`,
      );
    }
    if (live.queued >= this.config.sessions.maxQueuedTasks) {
      throw new RuntimeError(
        "RATE_LIMITED",
        `Session "${sessionId}" has ${live.queued} queued actions, the limit (sessions.maxQueuedTasks) is ${this.config.sessions.maxQueuedTasks}; wait for some to finish.`,
      );
    }
    const task = this.store.insertTask({
      id: newId("t"),
      sessionId,
      action: live.redactor.redactDeep(action),
      nowMs: this.#now(),
    });
    this.#emit(sessionId, "task", { task: this.#taskView(task) });
    live.queued++;
    live.chain = live.chain
      .then(() => this.#execute(live, task.id, action))
      .catch((err: unknown) => {
        // Only reachable when the store fails (e.g. closed under us): keep the queue going, say what broke.
        if (!this.#closed)
          this.logger.error("task bookkeeping failed", { taskId: task.id, code: errorInfo(err).code });
      });
    return this.#taskView(task);
  }

  async #execute(live: LiveSession, taskId: string, action: Record<string, unknown>): Promise<void> {
    live.queued--;
    if (this.#closed) return;
    let runtime: Runtime;
    try {
      runtime = await live.ready;
    } catch (err) {
      if (this.#closed) return;
      const info = errorInfo(err, live.redactor);
      const error = { code: info.code, message: `The session's sandbox failed to start: ${info.message}` };
      if (this.store.finishTask(taskId, "failed", this.#now(), { error })) this.#taskChanged(taskId);
      return;
    }
    if (this.#closed || live.closing || !this.store.startTask(taskId, this.#now())) return;
    this.#taskChanged(taskId);
    let result: { state: "completed" | "failed"; observation?: Record<string, unknown>; error?: ErrorInfo };
    try {
      const observation = await runtime.run(action as Parameters<Runtime["run"]>[0], {
        signal: live.abort.signal,
      });
      // The runtime redacted it already; again here, so that nothing a runtime missed is stored.
      result = {
        state: "completed",
        observation: live.redactor.redactDeep(serializeObservation(observation)),
      };
    } catch (err) {
      const info = errorInfo(err, live.redactor);
      result = {
        state: "failed",
        error: live.closing
          ? { code: "CANCELLED", message: `The session was deleted while this action ran (${info.message}).` }
          : info,
      };
    }
    if (this.#closed) return;
    if (this.store.finishTask(taskId, result.state, this.#now(), result)) this.#taskChanged(taskId);
  }

  /** One task; NOT_FOUND for an unknown id. */
  getTask(id: string): TaskView {
    const task = this.store.getTask(id);
    if (!task)
      throw new RuntimeError(
        "NOT_FOUND",
        `No task "${id}"; tasks are listed per session at GET /v1/sessions/{id}/tasks.`,
      );
    return this.#taskView(task);
  }

  /** Like {@link getTask}, but waits up to `waitMs` (capped at `server.maxWaitMs`) for the task to finish. */
  async waitTask(id: string, waitMs: number, signal?: AbortSignal): Promise<TaskView> {
    const task = this.getTask(id);
    if (task.status !== "queued" && task.status !== "running") return task;
    await this.#wait(this.#taskWaiters, id, waitMs, signal);
    return this.getTask(id);
  }

  /** Tasks of a session in queue order. */
  listTasks(sessionId: string, options: { afterSeq?: number; limit?: number } = {}): TaskView[] {
    this.#requireSession(sessionId);
    return this.store
      .listTasks(sessionId, options.afterSeq ?? 0, options.limit ?? 100)
      .map((t) => this.#taskView(t));
  }

  // ---------------------------------------------------------------- events

  /**
   * Subscribes to a session's events. With `afterId`, stored events after it are returned as `backlog` first
   * (no gap, no duplicate). The listener gets `null` when the session closes or the host shuts down.
   */
  subscribe(
    sessionId: string,
    afterId: number | undefined,
    listener: (event: HostEvent | null) => void,
  ): { backlog: HostEvent[]; unsubscribe: () => void } {
    this.#requireSession(sessionId);
    const set = this.#subscribers.get(sessionId) ?? new Set<(event: HostEvent | null) => void>();
    this.#subscribers.set(sessionId, set);
    set.add(listener);
    const backlog = afterId === undefined ? [] : this.store.eventsAfter(sessionId, afterId);
    return {
      backlog,
      unsubscribe: () => {
        set.delete(listener);
        if (set.size === 0) this.#subscribers.delete(sessionId);
      },
    };
  }

  // ---------------------------------------------------------------- costs

  /** Settled spend grouped by `by`, and every budget, from the cost plugin. */
  costs(by: CostGroup = "session"): CostsView {
    const cost = this.plugins.cost;
    const rows = cost?.report ? cost.report({ by }) : [];
    return {
      enabled: cost !== undefined,
      plugin: this.plugins.costPlugin ?? null,
      by,
      rows,
      totalUsd: rows.reduce((sum, r) => sum + r.costUsd, 0),
      budgets: cost?.budgetStatus ? cost.budgetStatus() : [],
    };
  }

  // ---------------------------------------------------------------- restart and shutdown

  async #recover(redactors: ReadonlyMap<string, Redactor>): Promise<void> {
    const now = this.#now();
    for (const task of this.store.unfinishedTasks()) {
      const message = task.state === "running" ? INTERRUPTED_RUNNING : INTERRUPTED_QUEUED;
      if (this.store.finishTask(task.id, "failed", now, { error: { code: "UNAVAILABLE", message } }))
        this.#taskChanged(task.id);
    }
    const attaching: Promise<unknown>[] = [];
    for (const session of this.store.openSessions()) {
      const handle = this.store.handleOf(session.id);
      if (session.state === "starting" || !handle) {
        this.#setSessionState(session.id, "error", {
          error: {
            code: "UNAVAILABLE",
            message:
              "Interrupted by host restart while the sandbox was starting; delete this session and create a new one.",
          },
        });
        attaching.push(
          this.#settleLostLease(session.id, handle, "host restarted while the sandbox was starting"),
        );
        continue;
      }
      if (handle.backend !== this.backend) {
        this.#setSessionState(session.id, "error", {
          error: {
            code: "FAILED_PRECONDITION",
            message: `This session runs on the "${handle.backend}" backend but the host now uses "${this.backend}"; restart the host with runtime.plugin "${handle.backend}" to re-attach, or delete the session.`,
          },
        });
        continue;
      }
      const redactor = redactors.get(session.id);
      if (!redactor) {
        this.#setSessionState(session.id, "error", {
          error: {
            code: "UNAVAILABLE",
            message:
              "Not re-attached after the host restart: this session's secrets could not be resolved, so what its sandbox returns could not be redacted (see the host log). Delete this session and create a new one.",
          },
        });
        continue;
      }
      this.#setSessionState(session.id, "starting", { error: null });
      const live = this.#attach(session.id, handle, redactor);
      attaching.push(live.settled);
      this.logger.info("re-attaching session after restart", {
        sessionId: session.id,
        backend: handle.backend,
      });
    }
    await Promise.all(attaching);
  }

  /**
   * Shuts the host down. With `closeSessions` (default: `!sessions.keepAliveOnShutdown`) every open session is
   * closed; otherwise sandboxes are left running for the next start to re-attach, and their unfinished tasks
   * are marked interrupted then. Idempotent.
   */
  async close(options: { closeSessions?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    const closeSessions = options.closeSessions ?? !this.config.sessions.keepAliveOnShutdown;
    if (closeSessions) {
      await this.recovered;
      await Promise.all([...this.#live.keys()].map((id) => this.deleteSession(id).catch(() => undefined)));
    }
    // Sandboxes still starting cannot be re-attached (they have no stored handle yet): stop them.
    const starting = [...this.#live.values()].filter(
      (live) => !live.closing && this.store.getSession(live.id)?.state === "starting",
    );
    this.#closed = true;
    for (const live of starting) live.abort.abort();
    await Promise.all(
      starting.map(async (live) => {
        await live.ready.catch(() => undefined);
        await live.runtime?.close().catch(() => undefined);
      }),
    );
    for (const live of this.#live.values()) live.unsubscribeStatus?.();
    this.#live.clear();
    for (const set of this.#subscribers.values()) for (const listener of set) listener(null);
    this.#subscribers.clear();
    for (const map of [this.#taskWaiters, this.#sessionWaiters])
      for (const key of [...map.keys()]) this.#notify(map, key);
    try {
      await this.plugins.close();
    } finally {
      this.store.close();
    }
  }
}
