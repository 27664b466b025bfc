/** Tag key under which a sandbox carries the id of the lease that pays for it. */
export const LEASE_TAG_KEY = "agent-runtime.lease";

/** A sandbox as a backend lists it for the orphan sweeper. */
export interface InventorySandbox {
  sandboxId: string;
  /** The sandbox's tags; the lease id is under {@link LEASE_TAG_KEY}. */
  tags: Readonly<Record<string, string>>;
  /** When the backend created the sandbox, epoch ms. */
  createdAtMs: number;
}

/**
 * What a backend implements so cost-guard can reconcile leases with real sandboxes (structural: no import
 * of cost-guard needed). `provider` must match the `provider` of the leases it pays for.
 */
export interface SandboxInventory {
  readonly provider: string;
  /** Every live sandbox that has a tag with this key. */
  listByTag(tagKey: string): Promise<InventorySandbox[]>;
  /** Terminates a sandbox; resolves when it is gone (or was already gone). */
  terminate(sandboxId: string): Promise<void>;
}

/** Options of one sweep. */
export interface SweepOptions {
  /** Leave leases younger than this alone (their create may be in flight), in ms. @default the guard's sweepGraceMs */
  graceMs?: number;
}

/** What a sweep did. */
export interface SweepReport {
  /** Sandboxes listed with a lease tag. */
  listed: number;
  /** Leases settled because no sandbox carries them. */
  settled: { leaseId: string; chargedUsd: number; durationMs: number }[];
  /** Sandboxes terminated because no open lease pays for them. */
  terminated: { sandboxId: string; leaseId: string; reason: string }[];
  /** Sandboxes found for leases that were reserved but never activated (now active). */
  adopted: { sandboxId: string; leaseId: string }[];
  /** Sandboxes whose lease tag belongs to another ledger: left alone. */
  foreign: string[];
  /** Terminations that failed (the sandbox may still run). */
  errors: { sandboxId: string; message: string }[];
}
