import {
  type Logger,
  type Redactor,
  type Runtime,
  RuntimeError,
  type RuntimeHandle,
} from "@agent-runtime/runtime-core";
import type { SessionView } from "../api/schemas.js";
import { sessionView, taskView } from "../api/views.js";
import type { ComposedPlugins } from "../compose.js";
import type { ResolvedHostConfig } from "../options.js";
import type { HostRedactor } from "../redaction.js";
import type { ErrorInfo, HostStore, SessionRecord, SessionState } from "../store.js";
import { EventHub } from "./events.js";
import { settleLostLease } from "./leases.js";

/** One session with a runtime in this process. */
export interface LiveSession {
  id: string;
  runtime: Runtime | undefined;
  /** Resolves with the runtime once it is ready (connected, its handle stored). */
  ready: Promise<Runtime>;
  /**
   * The session's task queue: each task runs after the previous one settled. It is the only queue on the host's
   * side of the action path: the runtime's own queue then never holds more than the one action in flight.
   */
  chain: Promise<void>;
  /** Tasks waiting in {@link chain}. */
  queued: number;
  abort: AbortController;
  closing: Promise<SessionView> | undefined;
  unsubscribeStatus: (() => void) | undefined;
  /** What the host stores, streams and logs about this session goes through it. */
  redactor: Redactor;
  /** Settles once the runtime is ready, or its failure has been recorded. */
  settled: Promise<void>;
}

/** A live session before its runtime exists. */
export function newLiveSession(id: string, redactor: Redactor): LiveSession {
  return {
    id,
    runtime: undefined,
    ready: Promise.resolve(undefined as unknown as Runtime),
    chain: Promise.resolve(),
    queued: 0,
    abort: new AbortController(),
    closing: undefined,
    unsubscribeStatus: undefined,
    redactor,
    settled: Promise.resolve(),
  };
}

/**
 * What the parts of a host share: its configuration, plugins, store and logger, the sessions live in this
 * process, and the one way to change a record (stored, then announced as an event and to waiters).
 */
export class HostCore {
  readonly config: ResolvedHostConfig;
  readonly plugins: ComposedPlugins;
  readonly store: HostStore;
  readonly logger: Logger;
  readonly events = new EventHub();
  readonly live = new Map<string, LiveSession>();
  /** Ids of sessions being created (between the request and their record). */
  readonly pending = new Set<string>();
  readonly #redactors: HostRedactor;
  #closed = false;

  constructor(
    config: ResolvedHostConfig,
    plugins: ComposedPlugins,
    store: HostStore,
    logger: Logger,
    redactors: HostRedactor,
  ) {
    this.config = config;
    this.plugins = plugins;
    this.store = store;
    this.logger = logger;
    this.#redactors = redactors;
  }

  /** True once the host shuts down: nothing is stored or announced any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Marks the host shut down and ends every stream and wait. */
  shutDown(): void {
    this.#closed = true;
    this.events.close();
  }

  /** Backend name of the runtime provider. */
  get backend(): string {
    return this.plugins.provider.backend;
  }

  now(): number {
    return Date.now();
  }

  assertOpen(): void {
    if (this.#closed)
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "The host is shutting down; retry against the restarted host.",
      );
  }

  /** The session's record; NOT_FOUND for an unknown id. */
  requireSession(id: string): SessionRecord {
    const record = this.store.getSession(id);
    if (!record)
      throw new RuntimeError("NOT_FOUND", `No session "${id}"; list sessions with GET /v1/sessions.`);
    return record;
  }

  sessionView(record: SessionRecord): SessionView {
    return sessionView(record, this.store.taskCounts(record.id));
  }

  /** Stores an event of a session and delivers it to its subscribers. */
  emit(sessionId: string, type: string, data: Record<string, unknown>): void {
    if (this.#closed) return;
    this.events.deliver(this.store.appendEvent(sessionId, type, data, this.now()));
  }

  /** Moves a session to `state`: stored, announced as a `session` event, waiters woken, streams ended at `closed`. */
  setSessionState(id: string, state: SessionState, options: { error?: ErrorInfo | null } = {}): void {
    if (this.#closed) return;
    this.store.updateSession(id, state, this.now(), options);
    const record = this.store.getSession(id);
    if (record) this.emit(id, "session", { session: this.sessionView(record) });
    this.events.sessionChanged(id);
    if (state === "closed") this.events.end(id);
  }

  /** Announces a task's new state as a `task` event; wakes its long-polls once it finished. */
  taskChanged(id: string): void {
    const task = this.store.getTask(id);
    if (!task) return;
    this.emit(task.sessionId, "task", { task: taskView(task) });
    if (task.state !== "queued" && task.state !== "running") this.events.taskChanged(id);
  }

  /**
   * Registers the redactor of a session's secrets for the host's logs. The secrets plugin's live redactor
   * redacts every log line already (see AgentHost.open), so a session that uses it adds nothing.
   */
  trackRedactor(sessionId: string, redactor: Redactor): void {
    if (redactor === this.plugins.redactor) this.#redactors.delete(sessionId);
    else this.#redactors.set(sessionId, redactor);
  }

  /** Forgets a closed session's redactor (the live one keeps knowing its values). */
  forgetRedactor(sessionId: string): void {
    this.#redactors.delete(sessionId);
  }

  /** See {@link settleLostLease}. */
  settleLostLease(sessionId: string, handle: RuntimeHandle | undefined, reason: string): Promise<void> {
    return settleLostLease(
      { cost: this.plugins.cost, store: this.store, logger: this.logger, nowMs: this.now() },
      sessionId,
      handle,
      reason,
    );
  }
}
