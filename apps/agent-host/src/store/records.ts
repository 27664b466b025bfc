/** The host database's tables, its rows and the records the host works with. */
import type { ResolvedSessionOverrides } from "@agent-runtime/runtime-core";

/** Lifecycle of a session. */
export type SessionState = "starting" | "ready" | "error" | "closing" | "closed";
/** Lifecycle of a task. */
export type TaskState = "queued" | "running" | "completed" | "failed" | "cancelled";

/** A secret-free error as stored and returned by the API. */
export interface ErrorInfo {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** The overrides a session was created with, besides its labels (kept in their own column). */
export type StoredOverrides = Omit<ResolvedSessionOverrides, "labels">;

/** A session row (the handle is kept apart: it holds the session key). */
export interface SessionRecord {
  id: string;
  backend: string;
  state: SessionState;
  runtimeStatus: string | null;
  labels: Record<string, string>;
  /** What the create asked for over the provider's options (`userId` included); `{}` for none. */
  overrides: StoredOverrides;
  error: ErrorInfo | null;
  createdAtMs: number;
  updatedAtMs: number;
  readyAtMs: number | null;
  closedAtMs: number | null;
}

/** A task row. */
export interface TaskRecord {
  id: string;
  sessionId: string;
  seq: number;
  state: TaskState;
  action: Record<string, unknown>;
  observation: Record<string, unknown> | null;
  error: ErrorInfo | null;
  createdAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
}

/** A stored session event (SSE). */
export interface EventRecord {
  id: number;
  sessionId: string;
  type: string;
  data: Record<string, unknown>;
  atMs: number;
}

export interface SessionRow {
  id: string;
  backend: string;
  state: SessionState;
  runtime_status: string | null;
  labels_json: string;
  overrides_json: string | null;
  error_json: string | null;
  created_at: number;
  updated_at: number;
  ready_at: number | null;
  closed_at: number | null;
}

export interface TaskRow {
  id: string;
  session_id: string;
  seq: number;
  state: TaskState;
  action_json: string;
  observation_json: string | null;
  error_json: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface EventRow {
  id: number;
  session_id: string;
  type: string;
  data_json: string;
  at: number;
}

/** Version of {@link SCHEMA}; a database with a newer one is refused. */
export const SCHEMA_VERSION = 1;

/** The tables (created when missing). */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  backend TEXT NOT NULL,
  state TEXT NOT NULL,
  runtime_status TEXT,
  labels_json TEXT NOT NULL DEFAULT '{}',
  overrides_json TEXT,
  handle_json TEXT,
  lease_id TEXT,
  error_json TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  ready_at INTEGER,
  closed_at INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  seq INTEGER NOT NULL,
  state TEXT NOT NULL,
  action_json TEXT NOT NULL,
  observation_json TEXT,
  error_json TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session_id, seq);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  type TEXT NOT NULL,
  data_json TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, id);
`;

/** Parses a nullable JSON column. */
function json<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** A session row as a record. */
export function toSession(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    backend: row.backend,
    state: row.state,
    runtimeStatus: row.runtime_status,
    labels: JSON.parse(row.labels_json) as Record<string, string>,
    overrides: json<StoredOverrides>(row.overrides_json) ?? {},
    error: json<ErrorInfo>(row.error_json),
    createdAtMs: row.created_at,
    updatedAtMs: row.updated_at,
    readyAtMs: row.ready_at,
    closedAtMs: row.closed_at,
  };
}

/** A task row as a record. */
export function toTask(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    seq: row.seq,
    state: row.state,
    action: JSON.parse(row.action_json) as Record<string, unknown>,
    observation: json<Record<string, unknown>>(row.observation_json),
    error: json<ErrorInfo>(row.error_json),
    createdAtMs: row.created_at,
    startedAtMs: row.started_at,
    finishedAtMs: row.finished_at,
  };
}

/** An event row as a record. */
export function toEvent(row: EventRow): EventRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    type: row.type,
    data: JSON.parse(row.data_json) as Record<string, unknown>,
    atMs: row.at,
  };
}
