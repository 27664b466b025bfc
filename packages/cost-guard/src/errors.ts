import { RuntimeError } from "@agent-runtime/runtime-core";
import { isSqliteBusyError, SqliteDriverUnavailableError, SqliteError } from "@agent-runtime/sqlite";

/** Amounts for a BUDGET_EXCEEDED error, in USD. */
export interface BudgetExceededDetails {
  budget: string;
  scopeKey: string;
  periodKey: string;
  spentUsd: number;
  reservedUsd: number;
  limitUsd: number;
  requestedUsd: number;
}

/** A BUDGET_EXCEEDED error: a runtime-core `RuntimeError` whose `details` are {@link BudgetExceededDetails}. */
export type BudgetExceededError = RuntimeError & {
  readonly code: "BUDGET_EXCEEDED";
  readonly details: BudgetExceededDetails;
};

/**
 * True for the error `reserve`, `reserveSync` and `extend` throw when a budget would be exceeded; its
 * `details` carry the numbers (for an HTTP 402 body, say).
 *
 * @example
 * ```ts
 * try { await guard.reserve(request); } catch (err) {
 *   if (isBudgetExceededError(err)) return json(402, err.details); // { budget, limitUsd, spentUsd, ... }
 *   throw err;
 * }
 * ```
 */
export function isBudgetExceededError(err: unknown): err is BudgetExceededError {
  return err instanceof RuntimeError && err.code === "BUDGET_EXCEEDED" && err.details !== undefined;
}

/** True when `err` (or its cause) is SQLite's "database is locked" (SQLITE_BUSY*), from either driver. */
export function isBusyError(err: unknown): boolean {
  return isSqliteBusyError(err);
}

/** Formats USD for messages: cents for amounts of a dollar or more, otherwise up to 6 decimals. */
export function formatUsd(usd: number): string {
  if (Math.abs(usd) >= 1) return `$${usd.toFixed(2)}`;
  const text = usd.toFixed(6).replace(/0+$/, "");
  return `$${text.length - text.indexOf(".") < 3 ? usd.toFixed(2) : text}`;
}

/** What a refused reservation tells the caller to do next. */
const RESERVE_NEXT_STEPS =
  "Nothing was created. Shorten the lifetime, lower the CPU limit or GPU count, settle finished leases, " +
  "or raise limitUsd.";

/**
 * Builds the BUDGET_EXCEEDED error: what was spent, reserved, the limit and what was requested, then
 * `nextSteps` (what was left as it was and how to fix it; default: a refused reservation's).
 */
export function budgetExceededError(
  d: BudgetExceededDetails,
  what: string,
  label: string,
  nextSteps = RESERVE_NEXT_STEPS,
): RuntimeError {
  return new RuntimeError(
    "BUDGET_EXCEEDED",
    `${what} refused: budget "${d.budget}" (${label}) would be exceeded: spent ${formatUsd(d.spentUsd)} + ` +
      `reserved ${formatUsd(d.reservedUsd)} + requested ${formatUsd(d.requestedUsd)} > limit ${formatUsd(d.limitUsd)}. ` +
      nextSteps,
    { details: { ...d } },
  );
}

/**
 * The one boundary that maps SQLite and file-system failures of the ledger to RuntimeError codes (by
 * `code`, never by message text). RuntimeErrors pass through unchanged.
 */
export function toCostError(err: unknown, ledgerPath: string): RuntimeError {
  if (err instanceof RuntimeError) return err;
  if (err instanceof SqliteDriverUnavailableError) {
    return new RuntimeError("FAILED_PRECONDITION", `Cannot open the ledger ${ledgerPath}: ${err.message}`, {
      cause: err,
      details: { reasons: err.reasons },
    });
  }
  if (err instanceof SqliteError) {
    const code = err.code;
    const at = `ledger ${ledgerPath}`;
    if (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_") || code.startsWith("SQLITE_LOCKED")) {
      return new RuntimeError(
        "UNAVAILABLE",
        `The ${at} is locked by another process (a transaction longer than busyTimeoutMs, or a stuck ` +
          "process holding it); retry, raise busyTimeoutMs, or find the process that holds the ledger open.",
        { cause: err, details: { reason: "locked" } },
      );
    }
    if (code === "SQLITE_CANTOPEN" || code.startsWith("SQLITE_CANTOPEN_")) {
      return new RuntimeError(
        "NOT_FOUND",
        `Cannot open the ${at}: check that the file exists and its directory is writable.`,
        { cause: err },
      );
    }
    if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
      return new RuntimeError(
        "FAILED_PRECONDITION",
        `The ${at} is not a cost-guard ledger (or is damaged): point ledgerPath at a ledger file or a new path.`,
        { cause: err },
      );
    }
    if (code.startsWith("SQLITE_READONLY") || code.startsWith("SQLITE_PERM") || code === "SQLITE_AUTH") {
      return new RuntimeError(
        "UNAUTHORIZED",
        `The ${at} is read-only: give this process write access to it.`,
        {
          cause: err,
        },
      );
    }
    if (code === "SQLITE_FULL" || code.startsWith("SQLITE_IOERR")) {
      return new RuntimeError("UNAVAILABLE", `Writing the ${at} failed (${code}): check free disk space.`, {
        cause: err,
      });
    }
    return new RuntimeError("INTERNAL", `The ${at} failed with ${code}.`, { cause: err });
  }
  return new RuntimeError("INTERNAL", err instanceof Error ? err.message : String(err), { cause: err });
}
