import { join, resolve } from "node:path";
import {
  type Action,
  type Logger,
  noopRedactor,
  quietLogger,
  type Redactor,
  RuntimeError,
} from "@agent-runtime/runtime-core";
import type { CostGroup, CostsView, CreateSessionInput, SessionView, TaskView } from "./api/schemas.js";
import { costsView, taskView } from "./api/views.js";
import { type ComposedPlugins, type ComposeOptions, composePlugins } from "./compose.js";
import { HostCore } from "./host/core.js";
import type { EventListener, HostEvent, OutputEvent, OutputListener } from "./host/events.js";
import { recover, resolveRecoveryRedactors } from "./host/recovery.js";
import { SessionLifecycle } from "./host/sessions.js";
import { TaskQueue } from "./host/tasks.js";
import type { ResolvedHostConfig } from "./options.js";
import { HostRedactor, redactedLogger } from "./redaction.js";
import { defaultStateDir, ensurePrivateFile, ensureStateDir, tightenDatabaseFiles } from "./state-dir.js";
import { HostStore } from "./store.js";

export { errorInfo } from "./host/error-info.js";
export type { HostEvent, OutputEvent, OutputListener } from "./host/events.js";
export { OUTPUT_TAIL_CHARS } from "./host/events.js";
export { INTERRUPTED_QUEUED, INTERRUPTED_RUNNING } from "./host/recovery.js";

/** What {@link AgentHost.open} needs besides the configuration. */
export interface AgentHostOptions extends ComposeOptions {
  /** Use these plugins instead of composing them from the configuration (the host then closes them). */
  plugins?: ComposedPlugins;
  /** Environment for the default state directory (`XDG_STATE_HOME`, `HOME`). @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/** File name of the database in the state directory when `storage.path` is not set. */
export const DATABASE_FILE_NAME = "agent-host.db";

/**
 * The reference host: sessions (one runtime each) fed by asynchronous tasks, durable in SQLite. Actions of a
 * session run one at a time in submission order; results, session handles and an event log are stored, so a
 * restarted host keeps finished results, re-attaches to live sandboxes and marks interrupted tasks failed.
 * Inputs are typed values: the HTTP API parses request bodies (and `parseAction` parses wire actions) before
 * they get here.
 *
 * @example
 * ```ts
 * const host = await AgentHost.open(parseHostConfig({ storage: { stateDir: "/var/lib/agent-host" } }));
 * const session = await host.createSession({});
 * const task = host.submitAction(session.id, cmdRun("ls"));
 * console.log((await host.waitTask(task.id, 30_000)).observation);
 * await host.close();
 * ```
 */
export class AgentHost {
  readonly config: ResolvedHostConfig;
  readonly plugins: ComposedPlugins;
  readonly store: HostStore;
  /** The host's logger: every line goes through the secrets of every session first. */
  readonly logger: Logger;
  /** The private state directory (absolute; created 0700 by {@link AgentHost.ensureStateDir} when first needed). */
  readonly stateDir: string;
  /**
   * Settles once every session open at startup has re-attached or failed to, and the cost plugin's orphan sweep
   * (cost-guard with a provider that has an inventory, e.g. docker or modal) has run.
   */
  readonly recovered: Promise<void>;
  readonly #core: HostCore;
  readonly #sessions: SessionLifecycle;
  readonly #tasks: TaskQueue;
  #stateDirReady: boolean;

  private constructor(
    core: HostCore,
    init: { stateDir: string; stateDirReady: boolean; recoveryRedactors: Map<string, Redactor> },
  ) {
    this.#core = core;
    this.config = core.config;
    this.plugins = core.plugins;
    this.store = core.store;
    this.logger = core.logger;
    this.stateDir = init.stateDir;
    this.#stateDirReady = init.stateDirReady;
    this.#sessions = new SessionLifecycle(core);
    this.#tasks = new TaskQueue(core);
    this.recovered = recover(core, this.#sessions, init.recoveryRedactors);
  }

  /**
   * Composes the plugins, opens the store and recovers what a previous run left. The state directory
   * (`storage.stateDir`, default {@link defaultStateDir}) is created 0700 when the database lives there.
   * Every log line (the host's and the plugins') goes through the secrets plugin's live redactor, and through
   * each session's secrets when the plugin has none.
   */
  static async open(config: ResolvedHostConfig, options: AgentHostOptions = {}): Promise<AgentHost> {
    const stateDir = resolve(config.storage.stateDir ?? defaultStateDir(options.env));
    const path = config.storage.path ?? join(ensureStateDir(stateDir), DATABASE_FILE_NAME);
    const redactors = new HostRedactor();
    const sessionLogger = redactedLogger(options.logger ?? quietLogger, redactors);
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
          logger: sessionLogger,
          ...(defaultLedger !== undefined ? { defaultLedgerPath: defaultLedger } : {}),
        }));
      if (ownLedger) tightenDatabaseFiles(defaultLedger);
    } catch (err) {
      store.close();
      throw err;
    }
    // Composed here, the plugins' logger is the session logger behind the live redactor: the host logs there too.
    const logger = options.plugins
      ? redactedLogger(sessionLogger, plugins.redactor ?? noopRedactor)
      : plugins.logger;
    let recoveryRedactors: Map<string, Redactor>;
    try {
      recoveryRedactors = await resolveRecoveryRedactors(store, plugins, logger);
    } catch (err) {
      await plugins.close().catch(() => undefined);
      store.close();
      throw err;
    }
    const core = new HostCore(config, plugins, store, logger, redactors);
    return new AgentHost(core, {
      stateDir,
      stateDirReady: config.storage.path === undefined,
      recoveryRedactors,
    });
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
    return this.#core.backend;
  }

  /** Sessions starting or ready in this process. */
  get openSessionCount(): number {
    return this.#sessions.openCount;
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Creates a session and starts its sandbox. Resolves in status `starting` as soon as the sandbox's cost is
   * reserved and its secrets are resolved (the sandbox itself starts in the background). Throws
   * INVALID_ARGUMENT or UNSUPPORTED (the runtime provider refuses a field, named), ALREADY_EXISTS (id taken),
   * RATE_LIMITED (`sessions.maxSessions`), BUDGET_EXCEEDED (a budget cannot fit the sandbox's worst-case cost:
   * nothing is stored or started, and `details` holds the budget's `limitUsd`, `spentUsd`, `reservedUsd`,
   * `requestedUsd`, `currency`).
   */
  createSession(request: CreateSessionInput = {}): Promise<SessionView> {
    return this.#sessions.create(request);
  }

  /** Every session known to the store (also closed ones), oldest first. */
  listSessions(): SessionView[] {
    return this.store.listSessions().map((r) => this.#core.sessionView(r));
  }

  /** One session; NOT_FOUND for an unknown id. */
  getSession(id: string): SessionView {
    return this.#core.sessionView(this.#core.requireSession(id));
  }

  /** Like {@link getSession}, but waits up to `waitMs` while the session is `starting` or `closing`. */
  async waitSession(id: string, waitMs: number, signal?: AbortSignal): Promise<SessionView> {
    const deadline = Date.now() + Math.min(waitMs, this.config.server.maxWaitMs);
    for (;;) {
      const record = this.#core.requireSession(id);
      const left = deadline - Date.now();
      if (
        (record.state !== "starting" && record.state !== "closing") ||
        left <= 0 ||
        signal?.aborted ||
        this.#core.closed
      ) {
        return this.#core.sessionView(record);
      }
      await this.#core.events.waitSession(id, left, signal);
    }
  }

  /**
   * Closes a session: queued tasks are cancelled, the running one is abandoned, the sandbox is stopped.
   * Idempotent for closed sessions; NOT_FOUND for an unknown id.
   */
  deleteSession(id: string): Promise<SessionView> {
    return this.#sessions.delete(id);
  }

  // ---------------------------------------------------------------- tasks

  /**
   * Queues a parsed action (runtime-core's `parseAction` of the wire form, or a builder such as `cmdRun("ls")`)
   * on a session and returns the task at once. Throws NOT_FOUND (session), FAILED_PRECONDITION (session not
   * starting or ready), RATE_LIMITED (`sessions.maxQueuedTasks`).
   */
  submitAction(sessionId: string, action: Action): TaskView {
    return this.#tasks.submit(sessionId, action);
  }

  /** One task; NOT_FOUND for an unknown id. */
  getTask(id: string): TaskView {
    const task = this.store.getTask(id);
    if (!task)
      throw new RuntimeError(
        "NOT_FOUND",
        `No task "${id}"; tasks are listed per session at GET /v1/sessions/{id}/tasks.`,
      );
    return taskView(task);
  }

  /** Like {@link getTask}, but waits up to `waitMs` (capped at `server.maxWaitMs`) for the task to finish. */
  async waitTask(id: string, waitMs: number, signal?: AbortSignal): Promise<TaskView> {
    const task = this.getTask(id);
    if (task.status !== "queued" && task.status !== "running") return task;
    await this.#core.events.waitTask(id, Math.min(waitMs, this.config.server.maxWaitMs), signal);
    return this.getTask(id);
  }

  /** Tasks of a session in queue order. */
  listTasks(sessionId: string, options: { afterSeq?: number; limit?: number } = {}): TaskView[] {
    this.#core.requireSession(sessionId);
    return this.store.listTasks(sessionId, options.afterSeq ?? 0, options.limit ?? 100).map(taskView);
  }

  // ---------------------------------------------------------------- events and costs

  /**
   * Subscribes to a session's events. With `afterId`, stored events after it are returned as `backlog` first
   * (no gap, no duplicate). The listener gets `null` when the session closes or the host shuts down.
   * `onOutput` also receives the live output of the session's running tasks (not stored, never replayed).
   */
  subscribe(
    sessionId: string,
    afterId: number | undefined,
    listener: EventListener,
    options: { onOutput?: OutputListener } = {},
  ): { backlog: HostEvent[]; unsubscribe: () => void } {
    this.#core.requireSession(sessionId);
    const events = this.#core.events;
    const unsubscribeEvents = events.subscribe(sessionId, listener);
    const unsubscribeOutput = options.onOutput
      ? events.subscribeOutput(sessionId, options.onOutput)
      : () => {};
    const backlog = afterId === undefined ? [] : this.store.eventsAfter(sessionId, afterId);
    return {
      backlog,
      unsubscribe: () => {
        unsubscribeEvents();
        unsubscribeOutput();
      },
    };
  }

  /**
   * Follows one task: returns its current view and, while it runs, its latest output kept in memory (at most
   * {@link OUTPUT_TAIL_CHARS} characters), then calls `listener` with each change of the task and each new piece
   * of its output, and with `null` once it finished (after its final `task`), its session closed or the host
   * shut down. A task that finished already gets no calls. NOT_FOUND for an unknown id.
   */
  followTask(
    taskId: string,
    listener: (
      event: { type: "task"; task: TaskView } | { type: "output"; output: OutputEvent } | null,
    ) => void,
  ): { task: TaskView; output: OutputEvent[]; unsubscribe: () => void } {
    const task = this.getTask(taskId);
    if (task.status !== "queued" && task.status !== "running")
      return { task, output: [], unsubscribe: () => {} };
    const events = this.#core.events;
    let open = true;
    const stop = () => {
      if (!open) return;
      open = false;
      unsubscribeEvents();
      unsubscribeOutput();
    };
    const unsubscribeEvents = events.subscribe(task.sessionId, (event) => {
      if (event === null) {
        stop();
        listener(null);
        return;
      }
      const changed = event.type === "task" ? (event.data.task as TaskView | undefined) : undefined;
      if (changed?.id !== taskId) return;
      listener({ type: "task", task: changed });
      if (changed.status !== "queued" && changed.status !== "running") {
        stop();
        listener(null);
      }
    });
    const unsubscribeOutput = events.subscribeOutput(task.sessionId, (output) => {
      if (output.taskId === taskId) listener({ type: "output", output });
    });
    return { task, output: events.outputTail(taskId), unsubscribe: stop };
  }

  /** Settled spend grouped by `by`, and every budget, from the cost plugin. */
  costs(by: CostGroup = "session"): CostsView {
    return costsView(this.plugins.cost, this.plugins.costPlugin, by);
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Shuts the host down. With `closeSessions` (default: `!sessions.keepAliveOnShutdown`) every open session is
   * closed; otherwise sandboxes are left running for the next start to re-attach, and their unfinished tasks
   * are marked interrupted then. Idempotent.
   */
  async close(options: { closeSessions?: boolean } = {}): Promise<void> {
    const core = this.#core;
    if (core.closed) return;
    const closeSessions = options.closeSessions ?? !this.config.sessions.keepAliveOnShutdown;
    if (closeSessions) {
      await this.recovered;
      await Promise.all([...core.live.keys()].map((id) => this.deleteSession(id).catch(() => undefined)));
    }
    // Sandboxes still starting cannot be re-attached (they have no stored handle yet): stop them.
    const starting = [...core.live.values()].filter(
      (live) => !live.closing && this.store.getSession(live.id)?.state === "starting",
    );
    core.shutDown();
    for (const live of starting) live.abort.abort();
    await Promise.all(
      starting.map(async (live) => {
        await live.ready.catch(() => undefined);
        await live.runtime?.close().catch(() => undefined);
      }),
    );
    for (const live of core.live.values()) live.unsubscribeStatus?.();
    core.live.clear();
    try {
      await this.plugins.close();
    } finally {
      this.store.close();
    }
  }
}
