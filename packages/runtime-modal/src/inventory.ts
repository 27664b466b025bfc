import type { InventorySandbox, SandboxInventory } from "@agent-runtime/runtime-core";
import { toModalRuntimeError, withRetry } from "./errors.js";
import type { ModalServices } from "./services.js";

/**
 * runtime-core's {@link SandboxInventory} for Modal: lists the running sandboxes of the provider's App that carry
 * a tag key, and terminates one by id. A cost plugin's orphan sweeper (cost-guard's `guard.sweepOrphans(inventory)`)
 * uses it to settle leases without a sandbox and stop sandboxes without a lease.
 */
export class ModalSandboxInventory implements SandboxInventory {
  readonly provider = "modal";
  readonly #svc: ModalServices;

  constructor(services: ModalServices) {
    this.#svc = services;
  }

  async listByTag(tagKey: string): Promise<InventorySandbox[]> {
    const all = await this.#svc.listSandboxes();
    return all
      .filter((sb) => Object.hasOwn(sb.tags, tagKey))
      .map(({ sandboxId, tags, createdAtMs }) => ({ sandboxId, tags, createdAtMs }));
  }

  async terminate(sandboxId: string): Promise<void> {
    const client = this.#svc.client;
    try {
      await withRetry(
        async () => {
          const sb = await client.sandboxes.fromId(sandboxId);
          await sb.terminate({ wait: true });
        },
        {
          step: "terminate",
          what: `Terminating sandbox ${sandboxId} failed`,
          retry: this.#svc.options.retry,
        },
      );
    } catch (err) {
      const e = toModalRuntimeError(err, "terminate", `Terminating sandbox ${sandboxId} failed`);
      if (e.code !== "NOT_FOUND") throw e;
    }
  }
}
