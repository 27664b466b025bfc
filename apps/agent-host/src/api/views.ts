import type { CostPlugin } from "@agent-runtime/runtime-core";
import type { SessionRecord, TaskRecord, TaskState } from "../store.js";
import type { CostGroup, CostsView, SessionView, TaskView } from "./schemas.js";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * A session as the API returns it (`SessionSchema`): never its handle or keys. `tasks` counts the session's
 * tasks per state.
 */
export function sessionView(record: SessionRecord, tasks: Record<TaskState, number>): SessionView {
  return {
    id: record.id,
    backend: record.backend,
    status: record.state,
    runtimeStatus: record.runtimeStatus,
    labels: record.labels,
    userId: record.overrides.userId ?? null,
    overrides: Object.fromEntries(Object.entries(record.overrides).filter(([key]) => key !== "userId")),
    error: record.error,
    tasks,
    createdAt: iso(record.createdAtMs)!,
    updatedAt: iso(record.updatedAtMs)!,
    readyAt: iso(record.readyAtMs),
    closedAt: iso(record.closedAtMs),
  };
}

/** A task as the API returns it (`TaskSchema`). */
export function taskView(record: TaskRecord): TaskView {
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

/** `GET /v1/costs` (`CostsSchema`): settled spend grouped by `by` and every budget, from the cost plugin. */
export function costsView(
  cost: CostPlugin | undefined,
  plugin: string | undefined,
  by: CostGroup,
): CostsView {
  const rows = cost?.report ? cost.report({ by }) : [];
  return {
    enabled: cost !== undefined,
    plugin: plugin ?? null,
    by,
    rows,
    totalUsd: rows.reduce((sum, r) => sum + r.costUsd, 0),
    budgets: cost?.budgetStatus ? cost.budgetStatus() : [],
  };
}
