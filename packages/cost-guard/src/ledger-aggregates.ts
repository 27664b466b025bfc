import type { Database } from "@agent-runtime/sqlite";
import type { BudgetPeriod, BudgetScope } from "./budgets.js";

/** Spent (settled) and reserved (open) totals of one scope key and period key, in nano-USD. */
export interface LeaseAggregate {
  scopeKey: string;
  periodKey: string;
  spentNanoUsd: number;
  reservedNanoUsd: number;
}

/** SQL pieces selecting the leases a budget scope applies to and the scope key of each. */
export function scopeSql(scope: BudgetScope): { keyExpr: string; where: string; params: unknown[] } {
  switch (scope.kind) {
    case "global":
      return { keyExpr: "'global'", where: "1", params: [] };
    case "user":
    case "session": {
      const col = scope.kind === "user" ? "user_id" : "session_id";
      return scope.value === undefined
        ? { keyExpr: `'${scope.kind}:' || ${col}`, where: `${col} IS NOT NULL`, params: [] }
        : { keyExpr: `'${scope.kind}:' || ${col}`, where: `${col} = ?`, params: [scope.value] };
    }
    case "tag": {
      // Tag keys are restricted to [A-Za-z0-9._/-], so quoting them inside a JSON path is safe.
      const value = `json_extract(tags_json, '$."${scope.key}"')`;
      const keyExpr = `'tag:${scope.key}=' || ${value}`;
      return scope.value === undefined
        ? { keyExpr, where: `${value} IS NOT NULL`, params: [] }
        : { keyExpr, where: `${value} = ?`, params: [scope.value] };
    }
  }
}

/** SQL expression of a budget period's key for a lease. */
export function periodSql(period: BudgetPeriod): string {
  return period === "total" ? "'total'" : period === "daily" ? "'day:' || day" : "'month:' || month";
}

/**
 * Spent and reserved totals per scope key and period key for a budget shape, computed from the leases
 * themselves (not the running counters); optionally only for one period key.
 */
export function aggregateLeases(
  db: Database,
  scope: BudgetScope,
  period: BudgetPeriod,
  onlyPeriodKey?: string,
): LeaseAggregate[] {
  const s = scopeSql(scope);
  const p = periodSql(period);
  const periodWhere = onlyPeriodKey === undefined ? "" : ` AND ${p} = ?`;
  const rows = db
    .prepare<unknown[], { scope_key: string; period_key: string; spent: number; reserved: number }>(
      `SELECT ${s.keyExpr} AS scope_key, ${p} AS period_key,
         SUM(CASE WHEN status = 'settled' THEN charged_nusd ELSE 0 END) AS spent,
         SUM(CASE WHEN status <> 'settled' THEN reserved_nusd ELSE 0 END) AS reserved
       FROM leases WHERE ${s.where}${periodWhere} GROUP BY 1, 2`,
    )
    .all(...s.params, ...(onlyPeriodKey === undefined ? [] : [onlyPeriodKey]));
  return rows.map((r) => ({
    scopeKey: r.scope_key,
    periodKey: r.period_key,
    spentNanoUsd: r.spent,
    reservedNanoUsd: r.reserved,
  }));
}
