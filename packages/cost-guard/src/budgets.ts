import type { CostScope } from "@agent-runtime/runtime-core";
import { parseOrThrow } from "@agent-runtime/runtime-core";
import { z } from "zod";

/** Budget periods; daily and monthly periods are calendar days and months in UTC. */
export const BUDGET_PERIODS = ["total", "daily", "monthly"] as const;
/** A budget period. */
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/**
 * What a budget does at its limit: `refuse` new reservations; `terminate` also stops running sandboxes
 * (through their terminate hooks) when the limit would be crossed before they end; `warn` only warns.
 */
export const BUDGET_ENFORCEMENTS = ["refuse", "terminate", "warn"] as const;
/** A budget's enforcement. */
export type BudgetEnforcement = (typeof BUDGET_ENFORCEMENTS)[number];

/** A parsed budget scope. `value` absent means "each user / session / tag value separately". */
export type BudgetScope =
  | { kind: "global" }
  | { kind: "user"; value?: string }
  | { kind: "session"; value?: string }
  | { kind: "tag"; key: string; value?: string };

const TAG_KEY = /^[A-Za-z0-9._/-]+$/;

/** Parses `global`, `user`, `user:<id>`, `session`, `session:<id>`, `tag:<key>` or `tag:<key>=<value>`. */
export function parseBudgetScope(text: string): BudgetScope | string {
  if (text === "global") return { kind: "global" };
  const colon = text.indexOf(":");
  const head = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? undefined : text.slice(colon + 1);
  if (head === "user" || head === "session") {
    if (rest === "") return `empty ${head} id: use "${head}" for every ${head} or "${head}:<id>"`;
    return rest === undefined ? { kind: head } : { kind: head, value: rest };
  }
  if (head === "tag") {
    if (!rest) return `tag scope needs a key: "tag:<key>" or "tag:<key>=<value>"`;
    const eq = rest.indexOf("=");
    const key = eq < 0 ? rest : rest.slice(0, eq);
    if (!TAG_KEY.test(key)) return `tag key "${key}" may hold only letters, digits, . _ / -`;
    return eq < 0 ? { kind: "tag", key } : { kind: "tag", key, value: rest.slice(eq + 1) };
  }
  return `unknown scope "${text}": use global, user, user:<id>, session, session:<id>, tag:<key> or tag:<key>=<value>`;
}

/** A budget as users write it. */
export const BudgetSchema = z
  .object({
    /** Unique name shown in errors, warnings and reports. @default `<scope>/<period>` */
    name: z
      .string()
      .regex(/^[A-Za-z0-9._:/=@-]+$/, "use letters, digits and . _ : / = @ -")
      .optional(),
    /**
     * Who the budget applies to: `global`, `user` (each user separately), `user:<id>`, `session`,
     * `session:<id>`, `tag:<key>` (each value of the tag separately) or `tag:<key>=<value>`.
     * @default "global"
     */
    scope: z.string().default("global"),
    /** `total`, or calendar `daily` / `monthly` periods in UTC. @default "total" */
    period: z.enum(BUDGET_PERIODS).default("total"),
    /** The limit in USD per scope value and period. */
    limitUsd: z.number().positive().finite(),
    /** `refuse` new reservations, also `terminate` running sandboxes, or only `warn`. @default "refuse" */
    enforcement: z.enum(BUDGET_ENFORCEMENTS).default("refuse"),
    /** Spend (settled + accrued) at which to warn, in percent of the limit. @default [50, 80, 100] */
    warnAtPercent: z.array(z.number().positive().max(1000)).default([50, 80, 100]),
  })
  .strict()
  .transform((b, ctx) => {
    const scope = parseBudgetScope(b.scope);
    if (typeof scope === "string") {
      ctx.addIssue({ code: "custom", message: scope, path: ["scope"] });
      return z.NEVER;
    }
    return {
      name: b.name ?? `${b.scope}/${b.period}`,
      scope: b.scope,
      parsedScope: scope,
      period: b.period,
      limitUsd: b.limitUsd,
      enforcement: b.enforcement,
      warnAtPercent: [...new Set(b.warnAtPercent)].sort((x, y) => x - y),
    };
  });

/** A budget as users write it. */
export type Budget = z.input<typeof BudgetSchema>;
/** A validated budget with its parsed scope. */
export type ResolvedBudget = z.output<typeof BudgetSchema>;

/** The UTC day (`YYYY-MM-DD`) and month (`YYYY-MM`) of an epoch-ms instant. */
export function utcPeriods(ms: number): { day: string; month: string } {
  const iso = new Date(ms).toISOString();
  return { day: iso.slice(0, 10), month: iso.slice(0, 7) };
}

/** The period key of a budget for a lease reserved on `day` / `month`: `total`, `day:...` or `month:...`. */
export function periodKey(period: BudgetPeriod, day: string, month: string): string {
  return period === "total" ? "total" : period === "daily" ? `day:${day}` : `month:${month}`;
}

/** The scope key a lease with `scope` is counted under for a budget, or undefined when it does not apply. */
export function scopeKey(budget: BudgetScope, scope: CostScope): string | undefined {
  switch (budget.kind) {
    case "global":
      return "global";
    case "user":
    case "session": {
      const id = budget.kind === "user" ? scope.userId : scope.sessionId;
      if (id === undefined || (budget.value !== undefined && id !== budget.value)) return undefined;
      return `${budget.kind}:${id}`;
    }
    case "tag": {
      const value = scope.tags?.[budget.key];
      if (value === undefined || (budget.value !== undefined && value !== budget.value)) return undefined;
      return `tag:${budget.key}=${value}`;
    }
  }
}

/** One budget applied to one lease: the counter (scope key + period key) it is checked against. */
export interface BudgetBinding {
  budget: ResolvedBudget;
  scopeKey: string;
  periodKey: string;
}

/** Every budget that applies to a lease with `scope` reserved on `day` / `month`. */
export function bindBudgets(
  budgets: readonly ResolvedBudget[],
  scope: CostScope,
  day: string,
  month: string,
): BudgetBinding[] {
  const out: BudgetBinding[] = [];
  for (const budget of budgets) {
    const key = scopeKey(budget.parsedScope, scope);
    if (key !== undefined)
      out.push({ budget, scopeKey: key, periodKey: periodKey(budget.period, day, month) });
  }
  return out;
}

/** A readable label of a binding, e.g. `user:alice, daily 2026-10-01 UTC`. */
export function bindingLabel(b: { scopeKey: string; periodKey: string }): string {
  if (b.periodKey === "total") return `${b.scopeKey}, total`;
  const [kind, value] = b.periodKey.split(":") as [string, string];
  return `${b.scopeKey}, ${kind === "day" ? "daily" : "monthly"} ${value} UTC`;
}

/** Parses a list of budgets (as the ledger stores them) without a guard. */
export function parseBudgets(input: unknown): ResolvedBudget[] {
  return parseOrThrow(z.array(BudgetSchema), input, "budgets");
}
