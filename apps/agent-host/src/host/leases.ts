import {
  type CostPlugin,
  type Logger,
  type Runtime,
  RuntimeError,
  type RuntimeHandle,
  RuntimeStatus,
  toRuntimeError,
} from "@agent-runtime/runtime-core";
import type { HostStore } from "../store.js";
import { errorInfo } from "./error-info.js";

/** The cost lease a runtime holds (runtime-core's `BaseRuntime.lease`), or the one in its handle. */
export function leaseIdOf(runtime: Runtime | undefined, handle?: RuntimeHandle): string | undefined {
  const fromRuntime = (runtime as { lease?: { leaseId?: unknown } } | undefined)?.lease?.leaseId;
  if (typeof fromRuntime === "string") return fromRuntime;
  const fromHandle = handle?.data.leaseId;
  return typeof fromHandle === "string" ? fromHandle : undefined;
}

const PAST_RESERVATION: ReadonlySet<string> = new Set([
  RuntimeStatus.STARTING_RUNTIME,
  RuntimeStatus.RUNTIME_STARTED,
  RuntimeStatus.READY,
]);

/**
 * Resolves once `runtime` is past its cost reservation: the sandbox is being started (`STARTING_RUNTIME` or
 * later), or `connect` settled (`undefined`, or the error it failed with, e.g. BUDGET_EXCEEDED).
 */
export function pastReservation(runtime: Runtime, connecting: Promise<unknown>): Promise<unknown> {
  return new Promise((done) => {
    const off = runtime.onStatus((event) => {
      if (!PAST_RESERVATION.has(event.status)) return;
      off();
      done(undefined);
    });
    connecting.then(
      () => {
        off();
        done(undefined);
      },
      (err: unknown) => {
        off();
        done(err);
      },
    );
  });
}

const BUDGET_NUMBERS = [
  "budget",
  "scopeKey",
  "periodKey",
  "limitUsd",
  "spentUsd",
  "reservedUsd",
  "requestedUsd",
] as const;

/** The 402 of `POST /v1/sessions`: the budget's refusal with its numbers (USD) and what to do about it. */
export function budgetRefusal(sessionId: string, err: unknown): RuntimeError {
  const e = toRuntimeError(err);
  const details: Record<string, unknown> = { currency: "USD" };
  for (const key of BUDGET_NUMBERS) if (e.details?.[key] !== undefined) details[key] = e.details[key];
  return new RuntimeError(
    "BUDGET_EXCEEDED",
    `Session "${sessionId}" was not created: ${e.message} To free reserved money, delete sessions you no longer need (DELETE /v1/sessions/{id}); or raise the budget in cost.options.budgets.`,
    { details, cause: err },
  );
}

/**
 * Settles the cost lease of a session whose sandbox is gone and that no runtime in this process holds (it
 * would otherwise stay `active`, its reservation counted against budgets forever). The lease is the one
 * recorded for the session or in its handle; one already settled, or unknown to the ledger, is left alone.
 * The sandbox's end is unknown: as cost-guard's orphan sweep does, it is charged up to now, at most its
 * reserved lifetime. Failures are logged, never thrown.
 */
export async function settleLostLease(
  parts: { cost: CostPlugin | undefined; store: HostStore; logger: Logger; nowMs: number },
  sessionId: string,
  handle: RuntimeHandle | undefined,
  reason: string,
): Promise<void> {
  const { cost, store, logger } = parts;
  if (!cost) return;
  const leaseIds = new Set<string>();
  const fromHandle = leaseIdOf(undefined, handle);
  if (fromHandle) leaseIds.add(fromHandle);
  const recorded = store.leaseOf(sessionId);
  if (recorded) leaseIds.add(recorded);
  for (const leaseId of leaseIds) {
    try {
      const lease = cost.getLease?.(leaseId);
      if (cost.getLease && (!lease || lease.status === "settled")) continue;
      const endedAtMs = lease ? Math.min(parts.nowMs, lease.createdAtMs + lease.lifetimeMs) : undefined;
      await cost.settle(leaseId, { reason, ...(endedAtMs !== undefined ? { endedAtMs } : {}) });
      logger.info("settled the cost lease of a lost sandbox", { sessionId, leaseId });
    } catch (err) {
      logger.warn("settling the cost lease of a lost sandbox failed", {
        sessionId,
        leaseId,
        code: errorInfo(err).code,
      });
    }
  }
}
