import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { RuntimeError, type RuntimeHandle } from "@agent-runtime/runtime-core";
import { type Database, open, type SqliteDriverChoice } from "@agent-runtime/sqlite";
import { ensurePrivateFile, STATE_DIR_MODE, tightenDatabaseFiles } from "./state-dir.js";
import {
  type ErrorInfo,
  type EventRecord,
  type EventRow,
  SCHEMA,
  SCHEMA_VERSION,
  type SessionRecord,
  type SessionRow,
  type SessionState,
  type StoredOverrides,
  type TaskRecord,
  type TaskRow,
  type TaskState,
  toEvent,
  toSession,
  toTask,
} from "./store/records.js";

export type {
  ErrorInfo,
  EventRecord,
  SessionRecord,
  SessionState,
  StoredOverrides,
  TaskRecord,
  TaskState,
} from "./store/records.js";

/**
 * The host's durable state in SQLite: sessions with their runtime handles, tasks with their results, and the
 * per-session event log behind the SSE stream. The file and its -wal and -shm are mode 0600 (handles hold session keys);
 * handles are only read back by {@link HostStore.handleOf} and never leave the host.
 */
export class HostStore {
  readonly path: string;
  readonly #db: Database;
  readonly #stmts: ReturnType<HostStore["prepare"]>;

  /** `options.driver`: the SQLite driver (node:sqlite or better-sqlite3); `auto` by default. */
  constructor(path: string, options: { driver?: SqliteDriverChoice } = {}) {
    this.path = path === ":memory:" ? path : resolve(path);
    if (this.path !== ":memory:") {
      mkdirSync(dirname(this.path), { recursive: true, mode: STATE_DIR_MODE });
      // SQLite creates -wal and -shm with the database's mode: 0600 here makes all three private.
      tightenDatabaseFiles(this.path);
      ensurePrivateFile(this.path);
    }
    try {
      this.#db = open(this.path, { driver: options.driver ?? "auto" });
      this.#db.pragma("journal_mode = WAL");
      this.#db.pragma("synchronous = NORMAL");
      this.#db.pragma("busy_timeout = 5000");
      this.#db.pragma("foreign_keys = ON");
      this.#db.exec(SCHEMA);
      // Databases from before lease ids were kept: add the column (nullable, so older hosts still read them).
      const columns = this.#db.prepare<[], { name: string }>("PRAGMA table_info(sessions)").all();
      if (!columns.some((c) => c.name === "lease_id"))
        this.#db.exec("ALTER TABLE sessions ADD COLUMN lease_id TEXT");
      // ... and from before per-session overrides (nullable too: null reads as "the provider's shape").
      if (!columns.some((c) => c.name === "overrides_json"))
        this.#db.exec("ALTER TABLE sessions ADD COLUMN overrides_json TEXT");
    } catch (cause) {
      throw new RuntimeError(
        "UNAVAILABLE",
        `Cannot open the host database ${this.path}: ${(cause as Error).message}. Check storage.path (or --db) and its permissions.`,
        { cause },
      );
    }
    const version = this.#db
      .prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")
      .get();
    if (version === undefined) {
      this.#db
        .prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)")
        .run(String(SCHEMA_VERSION));
    } else if (Number(version.value) > SCHEMA_VERSION) {
      this.#db.close();
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `The host database ${this.path} has schema version ${version.value}, newer than this agent-host understands (${SCHEMA_VERSION}); upgrade agent-host.`,
      );
    }
    if (this.path !== ":memory:") tightenDatabaseFiles(this.path);
    this.#stmts = this.prepare();
  }

  private prepare() {
    const db = this.#db;
    return {
      insertSession: db.prepare(
        "INSERT INTO sessions (id, backend, state, labels_json, overrides_json, created_at, updated_at) VALUES (@id, @backend, @state, @labels, @overrides, @now, @now)",
      ),
      getSession: db.prepare<[string], SessionRow>("SELECT * FROM sessions WHERE id = ?"),
      listSessions: db.prepare<[], SessionRow>("SELECT * FROM sessions ORDER BY created_at, id"),
      listSessionsIn: db.prepare<[string, string], SessionRow>(
        "SELECT * FROM sessions WHERE state IN (?, ?) ORDER BY created_at, id",
      ),
      updateSession: db.prepare(
        `UPDATE sessions SET state = @state, runtime_status = COALESCE(@runtimeStatus, runtime_status), error_json = @error,
           updated_at = @now, ready_at = COALESCE(ready_at, @readyAt), closed_at = COALESCE(closed_at, @closedAt) WHERE id = @id`,
      ),
      setRuntimeStatus: db.prepare("UPDATE sessions SET runtime_status = ?, updated_at = ? WHERE id = ?"),
      setHandle: db.prepare("UPDATE sessions SET handle_json = ?, updated_at = ? WHERE id = ?"),
      getHandle: db.prepare<[string], { handle_json: string | null }>(
        "SELECT handle_json FROM sessions WHERE id = ?",
      ),
      setLeaseId: db.prepare("UPDATE sessions SET lease_id = ? WHERE id = ?"),
      getLeaseId: db.prepare<[string], { lease_id: string | null }>(
        "SELECT lease_id FROM sessions WHERE id = ?",
      ),
      nextSeq: db.prepare<[string], { seq: number }>(
        "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM tasks WHERE session_id = ?",
      ),
      insertTask: db.prepare(
        "INSERT INTO tasks (id, session_id, seq, state, action_json, created_at) VALUES (@id, @sessionId, @seq, 'queued', @action, @now)",
      ),
      getTask: db.prepare<[string], TaskRow>("SELECT * FROM tasks WHERE id = ?"),
      listTasks: db.prepare<[string, number, number], TaskRow>(
        "SELECT * FROM tasks WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      ),
      startTask: db.prepare(
        "UPDATE tasks SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'",
      ),
      finishTask: db.prepare(
        "UPDATE tasks SET state = @state, observation_json = @observation, error_json = @error, finished_at = @now WHERE id = @id AND state IN ('queued', 'running')",
      ),
      unfinishedTasks: db.prepare<[], TaskRow>(
        "SELECT * FROM tasks WHERE state IN ('queued', 'running') ORDER BY created_at",
      ),
      queuedOf: db.prepare<[string], TaskRow>(
        "SELECT * FROM tasks WHERE session_id = ? AND state = 'queued' ORDER BY seq",
      ),
      insertEvent: db.prepare("INSERT INTO events (session_id, type, data_json, at) VALUES (?, ?, ?, ?)"),
      eventsAfter: db.prepare<[string, number, number], EventRow>(
        "SELECT * FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?",
      ),
      taskCounts: db.prepare<[string], { state: TaskState; n: number }>(
        "SELECT state, COUNT(*) AS n FROM tasks WHERE session_id = ? GROUP BY state",
      ),
    };
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn);
  }

  /** Inserts a new session in state `starting`; ALREADY_EXISTS when the id is taken. */
  insertSession(input: {
    id: string;
    backend: string;
    labels: Record<string, string>;
    /** The create's overrides besides labels (kept so the session's shape survives restarts). */
    overrides?: StoredOverrides;
    nowMs: number;
  }): SessionRecord {
    try {
      this.#stmts.insertSession.run({
        id: input.id,
        backend: input.backend,
        state: "starting",
        labels: JSON.stringify(input.labels),
        overrides:
          input.overrides && Object.keys(input.overrides).length > 0 ? JSON.stringify(input.overrides) : null,
        now: input.nowMs,
      });
    } catch (cause) {
      if ((cause as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new RuntimeError(
          "ALREADY_EXISTS",
          `A session with id "${input.id}" already exists; pick another id or omit it.`,
          { cause },
        );
      }
      throw cause;
    }
    return this.getSession(input.id)!;
  }

  /** A session, or undefined. */
  getSession(id: string): SessionRecord | undefined {
    const row = this.#stmts.getSession.get(id);
    return row ? toSession(row) : undefined;
  }

  /** Every session, oldest first. */
  listSessions(): SessionRecord[] {
    return this.#stmts.listSessions.all().map(toSession);
  }

  /** Sessions that were open (starting or ready) when the host last stopped. */
  openSessions(): SessionRecord[] {
    return this.#stmts.listSessionsIn.all("starting", "ready").map(toSession);
  }

  /** Moves a session to `state`, recording the error (or clearing it) and the timestamps that apply. */
  updateSession(
    id: string,
    state: SessionState,
    nowMs: number,
    options: { error?: ErrorInfo | null; runtimeStatus?: string } = {},
  ): void {
    this.#stmts.updateSession.run({
      id,
      state,
      runtimeStatus: options.runtimeStatus ?? null,
      error: options.error ? JSON.stringify(options.error) : null,
      now: nowMs,
      readyAt: state === "ready" ? nowMs : null,
      closedAt: state === "closed" ? nowMs : null,
    });
  }

  /** Records the latest runtime status string. */
  setRuntimeStatus(id: string, status: string, nowMs: number): void {
    this.#stmts.setRuntimeStatus.run(status, nowMs, id);
  }

  /** Stores (or clears) the runtime handle of a session. */
  setHandle(id: string, handle: RuntimeHandle | null, nowMs: number): void {
    this.#stmts.setHandle.run(handle ? JSON.stringify(handle) : null, nowMs, id);
  }

  /** The stored runtime handle of a session (a credential: never log or return it). */
  handleOf(id: string): RuntimeHandle | undefined {
    const row = this.#stmts.getHandle.get(id);
    return row?.handle_json ? (JSON.parse(row.handle_json) as RuntimeHandle) : undefined;
  }

  /** Records the cost lease of a session's sandbox (so a sandbox lost while the host was down gets it settled). */
  setLeaseId(id: string, leaseId: string): void {
    this.#stmts.setLeaseId.run(leaseId, id);
  }

  /** The cost lease recorded for a session, if any. */
  leaseOf(id: string): string | undefined {
    return this.#stmts.getLeaseId.get(id)?.lease_id ?? undefined;
  }

  /** Inserts a queued task with the next sequence number of its session. */
  insertTask(input: {
    id: string;
    sessionId: string;
    action: Record<string, unknown>;
    nowMs: number;
  }): TaskRecord {
    return this.transaction(() => {
      const seq = this.#stmts.nextSeq.get(input.sessionId)?.seq ?? 1;
      this.#stmts.insertTask.run({
        id: input.id,
        sessionId: input.sessionId,
        seq,
        action: JSON.stringify(input.action),
        now: input.nowMs,
      });
      return this.getTask(input.id)!;
    });
  }

  /** A task, or undefined. */
  getTask(id: string): TaskRecord | undefined {
    const row = this.#stmts.getTask.get(id);
    return row ? toTask(row) : undefined;
  }

  /** Tasks of a session with `seq > afterSeq`, in order, at most `limit`. */
  listTasks(sessionId: string, afterSeq = 0, limit = 100): TaskRecord[] {
    return this.#stmts.listTasks.all(sessionId, afterSeq, limit).map(toTask);
  }

  /** Marks a queued task running; false when it was not queued any more (cancelled). */
  startTask(id: string, nowMs: number): boolean {
    return this.#stmts.startTask.run(nowMs, id).changes === 1;
  }

  /** Finishes an unfinished task; false when it had finished already. */
  finishTask(
    id: string,
    state: Extract<TaskState, "completed" | "failed" | "cancelled">,
    nowMs: number,
    result: { observation?: Record<string, unknown>; error?: ErrorInfo },
  ): boolean {
    return (
      this.#stmts.finishTask.run({
        id,
        state,
        observation: result.observation ? JSON.stringify(result.observation) : null,
        error: result.error ? JSON.stringify(result.error) : null,
        now: nowMs,
      }).changes === 1
    );
  }

  /** Tasks left queued or running (after a restart: interrupted). */
  unfinishedTasks(): TaskRecord[] {
    return this.#stmts.unfinishedTasks.all().map(toTask);
  }

  /** Queued tasks of one session, in order. */
  queuedTasks(sessionId: string): TaskRecord[] {
    return this.#stmts.queuedOf.all(sessionId).map(toTask);
  }

  /** Counts of a session's tasks per state. */
  taskCounts(sessionId: string): Record<TaskState, number> {
    const out: Record<TaskState, number> = { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const row of this.#stmts.taskCounts.all(sessionId)) out[row.state] = row.n;
    return out;
  }

  /** Appends an event to a session's log and returns it with its id. */
  appendEvent(sessionId: string, type: string, data: Record<string, unknown>, nowMs: number): EventRecord {
    const info = this.#stmts.insertEvent.run(sessionId, type, JSON.stringify(data), nowMs);
    return { id: Number(info.lastInsertRowid), sessionId, type, data, atMs: nowMs };
  }

  /** Events of a session with `id > afterId`, oldest first. */
  eventsAfter(sessionId: string, afterId: number, limit = 10_000): EventRecord[] {
    return this.#stmts.eventsAfter.all(sessionId, afterId, limit).map(toEvent);
  }

  /** Closes the database. Idempotent. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
