/**
 * @agent-runtime/cost-guard: price tables, estimates, budgets, leases reserved before a sandbox is created,
 * a SQLite ledger, enforcement (accrual, idle reaper, terminate budgets, orphan sweeper) and reports.
 */

export type { Budget, BudgetEnforcement, BudgetPeriod, BudgetScope, ResolvedBudget } from "./budgets.js";
// Budgets
export {
  BUDGET_ENFORCEMENTS,
  BUDGET_PERIODS,
  BudgetSchema,
  parseBudgetScope,
  utcPeriods,
} from "./budgets.js";
export type { Clock } from "./clock.js";
// Clocks and errors
export { ManualClock, systemClock } from "./clock.js";
export type { BudgetExceededDetails, BudgetExceededError } from "./errors.js";
export { formatUsd, isBudgetExceededError, toCostError } from "./errors.js";
export type { CostEstimate, CostSpec } from "./estimate.js";
export { CostSpecSchema, estimateCost, providerPrices, regionMultiplier } from "./estimate.js";
export type { GpuRequest } from "./gpu.js";
export { gpuCatalogue, parseGpuRequest } from "./gpu.js";
export type {
  BudgetCheck,
  BudgetCheckRow,
  CostEvent,
  CostGuardServices,
  EnforcementReport,
  Lease,
  OrphanFilter,
  OrphanSettleOptions,
  ReserveRequest,
  Settlement,
  SettleOptions,
} from "./guard.js";
// Guard and plugin
export { CostGuard } from "./guard.js";
export type { LeaseRecord, LeaseStatus, LedgerOpenOptions } from "./ledger.js";

// Ledger and reports
export { LEDGER_DIR_MODE, LEDGER_FILE_MODE, LEDGER_SCHEMA_VERSION, Ledger } from "./ledger.js";
export type { CostGuardOptions, ResolvedCostGuardOptions } from "./options.js";
export { CostGuardOptionsSchema } from "./options.js";
export { costGuard, costGuardPlugin, parseCostGuardOptions } from "./plugin.js";
export type { GpuPrice, PriceTable, PriceTableOverride, ProviderPrices } from "./prices.js";
// Prices and estimates
export {
  DEFAULT_PRICE_TABLE,
  GpuPriceSchema,
  loadPriceTableFile,
  PriceTableOverrideSchema,
  PriceTableSchema,
  ProviderPricesSchema,
  resolvePriceTable,
} from "./prices.js";
export type { BudgetStatusRow, OutputFormat, ReportGroup, ReportQuery, ReportRow } from "./report.js";
export { budgetStatus, buildReport, formatRows, OUTPUT_FORMATS, REPORT_GROUPS } from "./report.js";
export type { InventorySandbox, SandboxInventory, SweepOptions, SweepReport } from "./sweeper.js";
// Orphan sweeping (LEASE_TAG_KEY, SandboxInventory and InventorySandbox are runtime-core's, re-exported)
export { LEASE_TAG_KEY } from "./sweeper.js";
