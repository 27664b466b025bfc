import type { CostScope } from "@agent-runtime/runtime-core";
import type { CostSpec } from "./estimate.js";

/** USD to integer nano-dollars, the unit the ledger stores so that sums are exact. */
export function toNanoUsd(usd: number): number {
  return Math.round(usd * 1e9);
}
/** Integer nano-dollars to USD. */
export function fromNanoUsd(nanoUsd: number): number {
  return nanoUsd / 1e9;
}

/** Lifecycle of a lease: reserved before create, active once the sandbox exists, settled at the end. */
export type LeaseStatus = "reserved" | "active" | "settled";

/** One lease as stored in the ledger. Money in USD, times in epoch ms. */
export interface LeaseRecord {
  leaseId: string;
  status: LeaseStatus;
  provider: string;
  spec: CostSpec;
  /** Who the lease is charged to (changed by `rescope`, e.g. when a pooled sandbox is handed out). */
  scope: CostScope;
  /** Canonical GPU type billed, when any. */
  gpuType?: string;
  gpuCount: number;
  /** Rate the lease is charged at when settled (request or worst case, per `chargeAt`), USD per second. */
  chargeRateUsdPerSecond: number;
  /** Worst-case rate the reservation was priced at, USD per second. */
  worstCaseRateUsdPerSecond: number;
  /** Money held for the lease until it settles. */
  reservedUsd: number;
  lifetimeMs: number;
  createdAtMs: number;
  /** UTC day (`YYYY-MM-DD`) of the reservation: the lease counts in this day's and month's budgets. */
  day: string;
  month: string;
  sandboxId?: string;
  activatedAtMs?: number;
  heartbeatAtMs: number;
  settledAtMs?: number;
  chargedUsd?: number;
  durationMs?: number;
  settleReason?: string;
  priceTableVersion: string;
}

/** A lease row as SQLite returns it. */
export interface LeaseRow {
  lease_id: string;
  status: LeaseStatus;
  provider: string;
  spec_json: string;
  gpu_type: string | null;
  gpu_count: number;
  user_id: string | null;
  session_id: string | null;
  tags_json: string | null;
  charge_rate_usd_per_s: number;
  worst_rate_usd_per_s: number;
  reserved_nusd: number;
  lifetime_ms: number;
  created_at_ms: number;
  day: string;
  month: string;
  sandbox_id: string | null;
  activated_at_ms: number | null;
  heartbeat_at_ms: number;
  settled_at_ms: number | null;
  charged_nusd: number | null;
  duration_ms: number | null;
  settle_reason: string | null;
  price_version: string;
}

/** A new lease to insert (status `reserved`). */
export interface NewLease {
  leaseId: string;
  provider: string;
  spec: CostSpec;
  scope: CostScope;
  gpuType?: string;
  gpuCount: number;
  chargeRateUsdPerSecond: number;
  worstCaseRateUsdPerSecond: number;
  reservedNanoUsd: number;
  lifetimeMs: number;
  createdAtMs: number;
  day: string;
  month: string;
  priceTableVersion: string;
}

/** The row settling a lease returns. */
export interface SettledRow {
  reserved_nusd: number;
  charged_nusd: number;
  duration_ms: number;
  user_id: string | null;
  session_id: string | null;
  tags_json: string | null;
  day: string;
  month: string;
}

/** What settling a lease returns: the amounts (nano-USD) and where the lease is counted. */
export interface SettledLease {
  reservedNanoUsd: number;
  chargedNanoUsd: number;
  durationMs: number;
  scope: CostScope;
  day: string;
  month: string;
}

/** Spent and reserved totals of one counter (scope key + period key), in nano-USD. */
export interface CounterTotals {
  spentNanoUsd: number;
  reservedNanoUsd: number;
}

/** The scope columns of a row as a {@link CostScope} (absent columns are left out). */
export function scopeOf(r: Pick<LeaseRow, "user_id" | "session_id" | "tags_json">): CostScope {
  const scope: CostScope = {};
  if (r.user_id !== null) scope.userId = r.user_id;
  if (r.session_id !== null) scope.sessionId = r.session_id;
  if (r.tags_json !== null) scope.tags = JSON.parse(r.tags_json) as Record<string, string>;
  return scope;
}

/** A scope as the three columns the ledger stores it in (empty tags are stored as NULL). */
export function scopeColumns(scope: CostScope): [string | null, string | null, string | null] {
  const tags = scope.tags && Object.keys(scope.tags).length ? JSON.stringify(scope.tags) : null;
  return [scope.userId ?? null, scope.sessionId ?? null, tags];
}

/** A stored row as a {@link LeaseRecord}. */
export function toRecord(r: LeaseRow): LeaseRecord {
  return {
    leaseId: r.lease_id,
    status: r.status,
    provider: r.provider,
    spec: JSON.parse(r.spec_json) as CostSpec,
    scope: scopeOf(r),
    ...(r.gpu_type !== null ? { gpuType: r.gpu_type } : {}),
    gpuCount: r.gpu_count,
    chargeRateUsdPerSecond: r.charge_rate_usd_per_s,
    worstCaseRateUsdPerSecond: r.worst_rate_usd_per_s,
    reservedUsd: fromNanoUsd(r.reserved_nusd),
    lifetimeMs: r.lifetime_ms,
    createdAtMs: r.created_at_ms,
    day: r.day,
    month: r.month,
    ...(r.sandbox_id !== null ? { sandboxId: r.sandbox_id } : {}),
    ...(r.activated_at_ms !== null ? { activatedAtMs: r.activated_at_ms } : {}),
    heartbeatAtMs: r.heartbeat_at_ms,
    ...(r.settled_at_ms !== null ? { settledAtMs: r.settled_at_ms } : {}),
    ...(r.charged_nusd !== null ? { chargedUsd: fromNanoUsd(r.charged_nusd) } : {}),
    ...(r.duration_ms !== null ? { durationMs: r.duration_ms } : {}),
    ...(r.settle_reason !== null ? { settleReason: r.settle_reason } : {}),
    priceTableVersion: r.price_version,
  };
}
