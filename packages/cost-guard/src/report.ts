import type { BudgetEnforcement, ResolvedBudget } from "./budgets.js";
import { bindingLabel, periodKey, scopeKey, utcPeriods } from "./budgets.js";
import { fromNanoUsd, type Ledger } from "./ledger.js";

/** How a report groups settled leases. */
export const REPORT_GROUPS = ["user", "session", "day", "month", "gpu", "provider"] as const;
/** A report grouping. */
export type ReportGroup = (typeof REPORT_GROUPS)[number];

/** What to report. */
export interface ReportQuery {
  by: ReportGroup;
  /** Only leases reserved at or after this instant, epoch ms. */
  sinceMs?: number;
  /** Only leases reserved before this instant, epoch ms. */
  untilMs?: number;
}

/** One line of a spend report. `key` is `(none)` for leases without a user, session or GPU. */
export interface ReportRow {
  key: string;
  leases: number;
  /** Billed sandbox hours. */
  hours: number;
  /** GPU hours (hours x GPU count). */
  gpuHours: number;
  costUsd: number;
}

const GROUP_SQL: Record<ReportGroup, string> = {
  user: "COALESCE(user_id, '(none)')",
  session: "COALESCE(session_id, '(none)')",
  day: "day",
  month: "month",
  gpu: "COALESCE(gpu_type, '(none)')",
  provider: "provider",
};

/** Settled spend grouped by `query.by`: days and months in order, other groups by cost, highest first. */
export function buildReport(ledger: Ledger, query: ReportQuery): ReportRow[] {
  const where = ["status = 'settled'"];
  const params: number[] = [];
  if (query.sinceMs !== undefined) {
    where.push("created_at_ms >= ?");
    params.push(query.sinceMs);
  }
  if (query.untilMs !== undefined) {
    where.push("created_at_ms < ?");
    params.push(query.untilMs);
  }
  const order = query.by === "day" || query.by === "month" ? "key" : "cost DESC, key";
  const rows = ledger.db
    .prepare<number[], { key: string; leases: number; duration_ms: number; gpu_ms: number; cost: number }>(
      `SELECT ${GROUP_SQL[query.by]} AS key, COUNT(*) AS leases, SUM(duration_ms) AS duration_ms,
         SUM(duration_ms * gpu_count) AS gpu_ms, SUM(charged_nusd) AS cost
       FROM leases WHERE ${where.join(" AND ")} GROUP BY 1 ORDER BY ${order}`,
    )
    .all(...params);
  return rows.map((r) => ({
    key: r.key,
    leases: r.leases,
    hours: r.duration_ms / 3_600_000,
    gpuHours: r.gpu_ms / 3_600_000,
    costUsd: fromNanoUsd(r.cost),
  }));
}

/** Where one budget stands for one scope value in the current period. Money in USD. */
export interface BudgetStatusRow {
  budget: string;
  /** The scope value, e.g. `user:alice` or `global`. */
  scope: string;
  /** `total`, or the UTC day / month. */
  period: string;
  enforcement: BudgetEnforcement;
  limitUsd: number;
  spentUsd: number;
  reservedUsd: number;
  /** `limit - spent - reserved` (negative when over). */
  remainingUsd: number;
  /** `(spent + reserved) / limit`, in percent. */
  usedPercent: number;
}

/**
 * Every budget in the period that contains `nowMs`, per scope value with leases in that period (a budget
 * for one named scope value, or the global one, always has a row), computed from the leases themselves.
 */
export function budgetStatus(
  ledger: Ledger,
  budgets: readonly ResolvedBudget[],
  nowMs: number,
): BudgetStatusRow[] {
  const { day, month } = utcPeriods(nowMs);
  const out: BudgetStatusRow[] = [];
  for (const budget of budgets) {
    const pk = periodKey(budget.period, day, month);
    const rows = ledger.aggregate(budget.parsedScope, budget.period, pk);
    const named = fixedScopeKey(budget);
    if (rows.length === 0 && named !== undefined) {
      rows.push({ scopeKey: named, periodKey: pk, spentNanoUsd: 0, reservedNanoUsd: 0 });
    }
    for (const r of rows.sort((a, b) => a.scopeKey.localeCompare(b.scopeKey))) {
      const spentUsd = fromNanoUsd(r.spentNanoUsd);
      const reservedUsd = fromNanoUsd(r.reservedNanoUsd);
      const label = bindingLabel({ scopeKey: r.scopeKey, periodKey: pk });
      out.push({
        budget: budget.name,
        scope: r.scopeKey,
        period: label.slice(label.indexOf(", ") + 2),
        enforcement: budget.enforcement,
        limitUsd: budget.limitUsd,
        spentUsd,
        reservedUsd,
        remainingUsd: fromNanoUsd(Math.round(budget.limitUsd * 1e9) - r.spentNanoUsd - r.reservedNanoUsd),
        usedPercent: ((spentUsd + reservedUsd) / budget.limitUsd) * 100,
      });
    }
  }
  return out;
}

function fixedScopeKey(budget: ResolvedBudget): string | undefined {
  const s = budget.parsedScope;
  if (s.kind === "global") return "global";
  if (s.value === undefined) return undefined;
  return s.kind === "tag"
    ? scopeKey(s, { tags: { [s.key]: s.value } })
    : scopeKey(s, s.kind === "user" ? { userId: s.value } : { sessionId: s.value });
}

/** Output formats of the CLI. */
export const OUTPUT_FORMATS = ["table", "json", "csv"] as const;
/** An output format. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Renders rows as an aligned text table, pretty JSON or RFC 4180 CSV (header row first). */
export function formatRows(
  rows: readonly object[],
  format: OutputFormat,
  columns?: readonly string[],
): string {
  if (format === "json") return `${JSON.stringify(rows, null, 2)}\n`;
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cell = (row: object, col: string): string => {
    const v = (row as Record<string, unknown>)[col];
    if (typeof v === "number") return formatNumber(col, v, format);
    return v === undefined || v === null ? "" : String(v);
  };
  if (format === "csv") {
    const quote = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    const lines = [
      cols.map(quote).join(","),
      ...rows.map((r) => cols.map((c) => quote(cell(r, c))).join(",")),
    ];
    return `${lines.join("\r\n")}\r\n`;
  }
  const table = [cols, ...rows.map((r) => cols.map((c) => cell(r, c)))];
  const widths = cols.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  const numeric = cols.map(
    (c) => rows.length > 0 && rows.every((r) => typeof (r as Record<string, unknown>)[c] === "number"),
  );
  return `${table
    .map((line) =>
      line
        .map((s, i) => (numeric[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}

function formatNumber(col: string, v: number, format: OutputFormat): string {
  if (format === "csv") return String(Number(v.toFixed(9)));
  if (col.endsWith("Usd")) return v.toFixed(Math.abs(v) >= 100 ? 2 : 4);
  if (col.endsWith("Percent")) return v.toFixed(1);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(3);
}
