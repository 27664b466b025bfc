import { existsSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import { engineForTests } from "@agent-runtime/docker-engine/testing";
import { afterAll } from "vitest";
import { type DockerRuntimeOptions, LABELS, MANAGED_BY } from "../src/index.js";

/** The engine the tests use (skipped with a reason where none answers; required in CI). */
export const found = await engineForTests();
export const engine = found.engine as DockerEngine;
/** Why the engine tests skip, for the suite's name ("" when they run). */
export const skipNote = found.skip ? ` (skipped: ${found.skip})` : "";

/** Provider options for tests: the engine found, and the default recipe on the clean Debian base. */
export function testOptions(extra: DockerRuntimeOptions = {}): DockerRuntimeOptions {
  const address = process.env.AGENT_RUNTIME_DOCKER_HOST || process.env.DOCKER_HOST;
  return {
    ...(address ? { engine: address } : {}),
    ...(extra.image === undefined ? { baseImage: found.baseImage } : {}),
    startupTimeoutMs: 60_000,
    ...extra,
  };
}

/** The containers of runtime-docker for `sessionId` (running or not). */
export async function containersOf(sessionId: string): Promise<string[]> {
  const rows = await engine.listContainers({
    all: true,
    labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.session]: sessionId },
  });
  return rows.map((r) => r.Id);
}

/** Removes, after the file's tests, every runtime-docker container whose session id starts with `prefix`. */
export function cleanupSessions(prefix: string): void {
  afterAll(async () => {
    if (!found.engine) return;
    const rows = await engine.listContainers({ all: true, labels: { [LABELS.managedBy]: MANAGED_BY } });
    for (const row of rows) {
      if (row.Labels?.[LABELS.session]?.startsWith(prefix)) await engine.removeContainer(row.Id);
    }
    // State directories of containers a test removed behind the runtime's back.
    const base = join(tmpdir(), "agent-runtime-docker");
    for (const name of existsSync(base) ? readdirSync(base, { withFileTypes: true }) : []) {
      if (name.name.startsWith(`ar-${prefix}`))
        rmSync(join(base, name.name), { recursive: true, force: true });
    }
  });
}
