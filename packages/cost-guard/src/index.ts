/** Price tables, estimates, budgets, leases reserved before create, a SQLite ledger, reaper and reports. */
export const PACKAGE_NAME = "@agent-runtime/cost-guard";
