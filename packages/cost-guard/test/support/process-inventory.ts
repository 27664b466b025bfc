import { type ChildProcess, spawn } from "node:child_process";
import type { InventorySandbox, SandboxInventory } from "../../src/sweeper.js";

/** A backend whose sandboxes are real `sleep` processes, tagged like Modal sandboxes. */
export class ProcessInventory implements SandboxInventory {
  readonly provider: string;

  constructor(provider = "modal") {
    this.provider = provider;
  }

  readonly sandboxes = new Map<
    string,
    { child: ChildProcess; tags: Record<string, string>; createdAtMs: number }
  >();
  readonly failTerminate = new Set<string>();
  #next = 0;

  create(tags: Record<string, string>): string {
    const sandboxId = `sb-${++this.#next}`;
    const child = spawn("sleep", ["300"], { stdio: "ignore" });
    this.sandboxes.set(sandboxId, { child, tags, createdAtMs: Date.now() });
    return sandboxId;
  }

  alive(sandboxId: string): boolean {
    const s = this.sandboxes.get(sandboxId);
    return !!s && s.child.exitCode === null && s.child.signalCode === null;
  }

  async listByTag(tagKey: string): Promise<InventorySandbox[]> {
    return [...this.sandboxes]
      .filter(([id, s]) => this.alive(id) && tagKey in s.tags)
      .map(([sandboxId, s]) => ({ sandboxId, tags: s.tags, createdAtMs: s.createdAtMs }));
  }

  async terminate(sandboxId: string): Promise<void> {
    if (this.failTerminate.has(sandboxId)) throw new Error(`backend refused to stop ${sandboxId}`);
    await this.kill(sandboxId);
  }

  async kill(sandboxId: string): Promise<void> {
    const s = this.sandboxes.get(sandboxId);
    if (!s || !this.alive(sandboxId)) return;
    const exited = new Promise((resolve) => s.child.once("exit", resolve));
    s.child.kill("SIGKILL");
    await exited;
  }

  async dispose(): Promise<void> {
    for (const id of this.sandboxes.keys()) await this.kill(id);
  }
}
