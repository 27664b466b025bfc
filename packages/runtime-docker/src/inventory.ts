import { rmSync } from "node:fs";
import { join } from "node:path";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import type { InventorySandbox, SandboxInventory } from "@agent-runtime/runtime-core";
import { toDockerRuntimeError } from "./errors.js";
import { CONTAINER_NAME_PREFIX, LABELS, MANAGED_BY } from "./naming.js";

/** A container runtime-docker made, as the engine lists it. */
export interface ListedContainer extends InventorySandbox {
  /** The container's name, without the leading `/`. */
  name: string;
  /** True while it runs. */
  running: boolean;
}

/**
 * runtime-core's {@link SandboxInventory} for Docker: the containers runtime-docker made (its `managed-by` label),
 * running or stopped, with their labels as tags; `terminate` removes one. A cost plugin's orphan sweeper uses it to
 * settle leases whose container is gone and remove containers whose lease is gone.
 */
export class DockerSandboxInventory implements SandboxInventory {
  readonly provider = "docker";
  readonly #engine: DockerEngine;
  readonly #stateBase: string | undefined;

  /** `stateBase`: where the provider keeps per-container state, removed with each container terminated here. */
  constructor(engine: DockerEngine, stateBase?: string) {
    this.#engine = engine;
    this.#stateBase = stateBase;
  }

  /** Containers of runtime-docker carrying every label of `match` (`true`: any value), running or stopped. */
  async list(match: Readonly<Record<string, string | true>> = {}): Promise<ListedContainer[]> {
    try {
      const rows = await this.#engine.listContainers({
        all: true,
        labels: { ...match, [LABELS.managedBy]: MANAGED_BY },
      });
      return rows.map((row) => ({
        sandboxId: row.Id,
        name: (row.Names?.[0] ?? "").replace(/^\//, ""),
        tags: row.Labels ?? {},
        createdAtMs: row.Created * 1000,
        running: row.State === "running",
      }));
    } catch (err) {
      throw toDockerRuntimeError(err, "Listing the containers of runtime-docker");
    }
  }

  async listByTag(tagKey: string): Promise<InventorySandbox[]> {
    return (await this.list({ [tagKey]: true })).map(({ sandboxId, tags, createdAtMs }) => ({
      sandboxId,
      tags,
      createdAtMs,
    }));
  }

  /** Removes the container (running or not) and its state directory on this host. Gone already is not an error. */
  async terminate(sandboxId: string): Promise<void> {
    try {
      const name = (await this.#engine.inspectContainer(sandboxId))?.Name.replace(/^\//, "");
      await this.#engine.removeContainer(sandboxId);
      if (this.#stateBase && name?.startsWith(CONTAINER_NAME_PREFIX) && !name.includes("/")) {
        rmSync(join(this.#stateBase, name), { recursive: true, force: true });
      }
    } catch (err) {
      throw toDockerRuntimeError(err, `Removing container ${sandboxId}`);
    }
  }
}
