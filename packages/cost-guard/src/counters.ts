/**
 * The running budget counters (spent and reserved per scope key and period key) as leases move through
 * them: reserve within the hard limits, move a reservation to another scope, charge at settle, and warn
 * at thresholds. Every function runs inside the caller's transaction.
 */
import { type BudgetBinding, bindingLabel, type ResolvedBudget, utcPeriods } from "./budgets.js";
import { type BudgetExceededDetails, budgetExceededError } from "./errors.js";
import type { WarningEvent } from "./events.js";
import { fromNanoUsd, type Ledger, toNanoUsd } from "./ledger.js";
import type { PriceTable } from "./prices.js";

/** One budget as {@link checkBindings} sees it for a request. Money in USD. */
export interface BudgetCheckRow {
  budget: string;
  scopeKey: string;
  periodKey: string;
  enforcement: "refuse" | "terminate" | "warn";
  limitUsd: number;
  spentUsd: number;
  reservedUsd: number;
  /** What `reserve` would hold: the request's worst case. */
  requestedUsd: number;
  /** `limit - spent - reserved` (may be negative). */
  remainingUsd: number;
  /** `spent + reserved + requested <= limit`, or a `warn` budget (which never refuses). */
  fits: boolean;
}

/** A counter (scope key + period key) and the bindings checked against it. */
interface CounterGroup {
  scopeKey: string;
  periodKey: string;
  bindings: BudgetBinding[];
}

/** Bindings grouped by the counter (scope key + period key) they share. */
export function groupByCounter(bindings: readonly BudgetBinding[]): CounterGroup[] {
  const groups = new Map<string, CounterGroup>();
  for (const b of bindings) {
    const key = counterKey(b);
    const group = groups.get(key) ?? { scopeKey: b.scopeKey, periodKey: b.periodKey, bindings: [] };
    groups.set(key, group);
    group.bindings.push(b);
  }
  return [...groups.values()];
}

function counterKey(b: { scopeKey: string; periodKey: string }): string {
  return `${b.scopeKey}\u0000${b.periodKey}`;
}

/**
 * Adds `extraNano` to the reserved total of every counter the bindings use, each guarded by the lowest hard
 * limit on it (one conditional upsert per counter), or throws BUDGET_EXCEEDED (rolling the transaction back)
 * naming the first budget that does not fit. `what` heads the message; `nextSteps` ends it.
 */
export function reserveCounters(
  ledger: Ledger,
  bindings: readonly BudgetBinding[],
  extraNano: number,
  what: string,
  nextSteps?: string,
): void {
  for (const group of groupByCounter(bindings)) {
    const hard = group.bindings.filter((b) => b.budget.enforcement !== "warn");
    if (hard.length === 0) {
      ledger.bumpCounter(group.scopeKey, group.periodKey, 0, extraNano);
      continue;
    }
    const limitNano = Math.min(...hard.map((b) => toNanoUsd(b.budget.limitUsd)));
    if (
      extraNano <= limitNano &&
      ledger.reserveWithin(group.scopeKey, group.periodKey, extraNano, limitNano)
    ) {
      continue;
    }
    const c = ledger.getCounter(group.scopeKey, group.periodKey);
    const b =
      hard.find((x) => c.spentNanoUsd + c.reservedNanoUsd + extraNano > toNanoUsd(x.budget.limitUsd)) ??
      hard[0]!;
    throw budgetExceededError(
      {
        budget: b.budget.name,
        scopeKey: b.scopeKey,
        periodKey: b.periodKey,
        spentUsd: fromNanoUsd(c.spentNanoUsd),
        reservedUsd: fromNanoUsd(c.reservedNanoUsd),
        limitUsd: b.budget.limitUsd,
        requestedUsd: fromNanoUsd(extraNano),
      },
      what,
      bindingLabel(b),
      nextSteps,
    );
  }
}

/**
 * Moves an open lease's reservation from the counters of its old bindings to those of its new ones. Counters
 * both scopes share keep it as it is (the lease passed them at reserve); counters only the new scope uses are
 * checked against their hard limits like a reservation (BUDGET_EXCEEDED otherwise).
 */
export function moveReservation(
  ledger: Ledger,
  from: readonly BudgetBinding[],
  to: readonly BudgetBinding[],
  reservedNano: number,
  what: string,
  nextSteps: string,
): void {
  const before = new Set(from.map(counterKey));
  const after = new Set(to.map(counterKey));
  reserveCounters(
    ledger,
    to.filter((b) => !before.has(counterKey(b))),
    reservedNano,
    what,
    nextSteps,
  );
  for (const group of groupByCounter(from.filter((b) => !after.has(counterKey(b))))) {
    ledger.bumpCounter(group.scopeKey, group.periodKey, 0, -reservedNano);
  }
}

/**
 * Charges a settled lease to its counters and releases its reservation; returns the thresholds the charge
 * crossed (each recorded once), to report after the commit.
 */
export function chargeCounters(
  ledger: Ledger,
  bindings: readonly BudgetBinding[],
  chargedNano: number,
  reservedNano: number,
  nowMs: number,
): WarningEvent[] {
  const warnings: WarningEvent[] = [];
  for (const group of groupByCounter(bindings)) {
    const totals = ledger.addCounter(group.scopeKey, group.periodKey, chargedNano, -reservedNano);
    for (const binding of group.bindings) {
      warnings.push(
        ...crossedThresholds(ledger, binding, totals.spentNanoUsd - chargedNano, totals.spentNanoUsd, nowMs),
      );
    }
  }
  return warnings;
}

/** Thresholds of a binding crossed between two spend levels, recorded once each in the ledger. */
export function crossedThresholds(
  ledger: Ledger,
  b: BudgetBinding,
  beforeNano: number,
  afterNano: number,
  nowMs: number,
): WarningEvent[] {
  const out: WarningEvent[] = [];
  const limitNano = toNanoUsd(b.budget.limitUsd);
  for (const percent of b.budget.warnAtPercent) {
    const at = (limitNano * percent) / 100;
    if (afterNano < at || beforeNano >= at) continue;
    if (!ledger.warnOnce(b.budget.name, b.scopeKey, b.periodKey, percent, nowMs)) continue;
    out.push({
      type: "warning",
      budget: b.budget.name,
      scopeKey: b.scopeKey,
      periodKey: b.periodKey,
      percent,
      spentUsd: fromNanoUsd(afterNano),
      limitUsd: b.budget.limitUsd,
    });
  }
  return out;
}

/**
 * Every binding's standing for a request of `requestedNano` (a read: no lock taken), and the first one
 * `reserve` would refuse, with what BUDGET_EXCEEDED would carry.
 */
export function checkBindings(
  ledger: Ledger,
  bindings: readonly BudgetBinding[],
  requestedNano: number,
): { budgets: BudgetCheckRow[]; exceeded?: BudgetExceededDetails } {
  const budgets: BudgetCheckRow[] = [];
  let exceeded: BudgetExceededDetails | undefined;
  for (const b of bindings) {
    const c = ledger.getCounter(b.scopeKey, b.periodKey);
    const limitNano = toNanoUsd(b.budget.limitUsd);
    const over = c.spentNanoUsd + c.reservedNanoUsd + requestedNano > limitNano;
    const row: BudgetCheckRow = {
      budget: b.budget.name,
      scopeKey: b.scopeKey,
      periodKey: b.periodKey,
      enforcement: b.budget.enforcement,
      limitUsd: b.budget.limitUsd,
      spentUsd: fromNanoUsd(c.spentNanoUsd),
      reservedUsd: fromNanoUsd(c.reservedNanoUsd),
      requestedUsd: fromNanoUsd(requestedNano),
      remainingUsd: fromNanoUsd(limitNano - c.spentNanoUsd - c.reservedNanoUsd),
      fits: b.budget.enforcement === "warn" || !over,
    };
    budgets.push(row);
    if (!row.fits && exceeded === undefined) {
      const { fits: _f, remainingUsd: _r, enforcement: _e, ...details } = row;
      exceeded = details;
    }
  }
  return exceeded ? { budgets, exceeded } : { budgets };
}

/** {@link utcPeriods}, remembering the last UTC day seen (formatting a date on every call is measurable). */
export class UtcPeriodCache {
  #startMs = Number.NaN;
  #periods = { day: "", month: "" };

  /** The UTC day and month of `nowMs`. */
  at(nowMs: number): { day: string; month: string } {
    if (nowMs >= this.#startMs && nowMs < this.#startMs + 86_400_000) return this.#periods;
    const periods = utcPeriods(nowMs);
    this.#startMs = Date.parse(`${periods.day}T00:00:00Z`);
    this.#periods = periods;
    return periods;
  }
}

/**
 * Records the budgets and the price table's version in the ledger (the CLI reads them) and rebuilds the
 * counters from the leases when the set of budget shapes (scope x period) changed. Reopening a ledger with
 * the same budgets only reads, so it takes no write lock (and never waits for one).
 */
export function syncBudgets(
  ledger: Ledger,
  budgets: readonly ResolvedBudget[],
  prices: Pick<PriceTable, "version" | "effectiveDate">,
): void {
  const shapes = [...new Map(budgets.map((b) => [`${b.scope}|${b.period}`, b])).values()]
    .map((b) => ({ scope: b.parsedScope, period: b.period, key: `${b.scope}|${b.period}` }))
    .sort((a, b) => a.key.localeCompare(b.key));
  const fingerprint = JSON.stringify(shapes.map((s) => s.key));
  const stored = JSON.stringify(budgets.map(({ parsedScope: _p, ...b }) => b));
  const priceTable = JSON.stringify({ version: prices.version, effectiveDate: prices.effectiveDate });
  const unchanged = (): boolean =>
    ledger.getMeta("counter_shapes") === fingerprint &&
    ledger.getMeta("budgets") === stored &&
    ledger.getMeta("price_table") === priceTable;
  if (unchanged()) return;
  ledger.immediate(() => {
    if (ledger.getMeta("counter_shapes") !== fingerprint) {
      ledger.rebuildCounters(shapes);
      ledger.setMeta("counter_shapes", fingerprint);
    }
    ledger.setMeta("budgets", stored);
    ledger.setMeta("price_table", priceTable);
  });
}
