/**
 * What a backend and a cost plugin must agree on to reconcile leases with live sandboxes. Kept in runtime-core
 * so that neither imports the other.
 */

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
 * What a backend implements so a cost plugin can reconcile leases with real sandboxes. `provider` must match
 * the `provider` of the leases it pays for.
 */
export interface SandboxInventory {
  readonly provider: string;
  /** Every live sandbox that has a tag with this key (each with its full tags). */
  listByTag(tagKey: string): Promise<InventorySandbox[]>;
  /** Terminates a sandbox; resolves when it is gone (or was already gone). */
  terminate(sandboxId: string): Promise<void>;
}
