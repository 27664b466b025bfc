import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { costGuard } from "@agent-runtime/cost-guard";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import { engineForTests } from "@agent-runtime/docker-engine/testing";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Json, tempDir } from "./helpers.js";

// The must-show of the docker runtime: the real host process (the built CLI) on Podman or Docker with cost-guard
// on, killed with SIGKILL and restarted on the same state directory.
const found = await engineForTests();
const engine = found.engine as DockerEngine;
const cli = join(import.meta.dirname, "..", "dist", "cli.js");
const dir = tempDir("agent-host-docker-");
/** Session ids of this run (container labels carry them; afterAll removes whatever is left). */
const PREFIX = `ahd-${randomBytes(3).toString("hex")}-`;
const TOKEN = `t-${randomBytes(16).toString("hex")}`;
const MANAGED = { "agent-runtime.managed-by": "runtime-docker" };
const hosts: ChildProcess[] = [];

/** Writes a host config on the docker runtime (the test engine, the clean Debian base); returns its path. */
function dockerConfig(name: string, extra: Record<string, unknown> = {}): string {
  const path = join(dir.path, `${name}.json`);
  const options = {
    engine: engine.address,
    baseImage: found.baseImage,
    stateDir: join(dir.path, "docker"),
    startupTimeoutMs: 90_000,
    ...extra,
  };
  writeFileSync(
    path,
    JSON.stringify({ runtime: { plugin: "docker", options }, secrets: { enabled: false } }),
  );
  return path;
}

interface HostProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (sessions stay up), and wait for the exit. */
  stop(): Promise<void>;
}

/** `agent-host serve` as a process on a free port with cost-guard on (the ledger in the state directory). */
async function startHost(config: string, stateDir: string): Promise<HostProcess> {
  const child = spawn(
    process.execPath,
    [cli, "serve", "--config", config, "--port", "0", "--state-dir", stateDir, "--log-level", "info"],
    {
      env: { ...process.env, HOME: dir.path, AGENT_HOST_TOKEN: TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  hosts.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!/serving on (http:\/\/\S+)/.test(stdout) && child.exitCode === null && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const url = /serving on (http:\/\/\S+)/.exec(stdout)?.[1];
  if (!url) throw new Error(`agent-host serve did not start\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  return {
    url,
    child,
    stderr: () => stderr,
    async api(method, path, body) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as Json };
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Runs a blocking command through the API and returns the finished task. */
async function run(host: HostProcess, sessionId: string, command: string): Promise<Json> {
  const sub = await host.api("POST", `/v1/sessions/${sessionId}/actions`, {
    action: "run",
    args: { command, blocking: true },
  });
  expect(sub.status, JSON.stringify(sub.body)).toBe(202);
  return (await host.api("GET", `/v1/tasks/${sub.body.id}?waitMs=60000`)).body;
}

/** Ids of the containers runtime-docker made for `sessionId`, running or not. */
async function containersOf(sessionId: string): Promise<string[]> {
  const rows = await engine.listContainers({
    all: true,
    labels: { ...MANAGED, "agent-runtime.session": sessionId },
  });
  return rows.map((r) => r.Id);
}

/** The cost ledger the host kept in `stateDir` (read after the host stopped). */
function ledgerOf(stateDir: string) {
  return costGuard({ ledgerPath: join(stateDir, "agent-host.db.costs"), enforceIntervalMs: 0 });
}

// File level: runs after each suite's own afterAll (the engine suite removes its containers first).
afterAll(() => dir.cleanup());

describe.skipIf(!existsSync(cli))("agent-host on the docker runtime without an engine", () => {
  test("demo --runtime docker with no engine at the address fails with exit 1, naming the address and how to fix it", async () => {
    const config = join(dir.path, "no-engine.json");
    const missing = join(dir.path, "no-engine.sock");
    writeFileSync(
      config,
      JSON.stringify({ runtime: { plugin: "docker", options: { engine: `unix://${missing}` } } }),
    );
    const child = spawn(process.execPath, [cli, "demo", "--runtime", "docker", "--config", config], {
      cwd: dir.path,
      env: { ...process.env, HOME: dir.path, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, out).toBe(1);
    expect(out).toContain("FAIL start the sandbox");
    expect(out).toContain(`error [UNAVAILABLE]`);
    expect(out).toContain(`The container engine at unix://${missing} cannot be reached`);
    expect(out).toContain("DOCKER_HOST");
  }, 60_000);
});

if (found.skip) {
  describe(`agent-host on the docker runtime (skipped: ${found.skip})`, () => {
    test.skip("needs a container engine", () => {});
  });
} else {
  describe("agent-host on the docker runtime (built CLI, real engine)", () => {
    beforeAll(() => {
      if (!existsSync(cli))
        throw new Error(
          `${cli} is missing: run \`pnpm build\` in apps/agent-host first (turbo's test task does).`,
        );
    });
    afterAll(async () => {
      for (const child of hosts)
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      const rows = await engine.listContainers({ all: true, labels: MANAGED });
      for (const row of rows)
        if (row.Labels?.["agent-runtime.session"]?.startsWith(PREFIX))
          await engine.removeContainer(row.Id).catch(() => undefined);
    });

    test("demo --runtime docker: the demo runs in a container; timings and a free cost printed; exit 0", async () => {
      const child = spawn(
        process.execPath,
        [cli, "demo", "--runtime", "docker", "--config", dockerConfig("demo")],
        {
          cwd: dir.path,
          env: { ...process.env, HOME: dir.path, NO_COLOR: "1" },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      hosts.push(child);
      let out = "";
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      child.stderr?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      expect(code, out).toBe(0);
      expect(out).toContain("agent-host demo: a sandbox on the docker runtime");
      expect(out).toMatch(/tests 3, pass 2, fail 1 \(exit code 1\)/);
      expect(out).toMatch(/tests 3, pass 3, fail 0 \(exit code 0\)/);
      expect(out).toContain("Cost: $0.00 for this sandbox, from cost-guard (docker sandboxes are free");
      expect(out).toContain("Result: the bug is fixed; 3 of 3 tests pass.");
    }, 300_000);

    test("kill -9 the host with three containers running, restart: they re-attach; DELETE leaves 0 containers and 0 active leases", async () => {
      const stateDir = join(dir.path, "state-restart");
      const config = dockerConfig("restart");
      const ids = [1, 2, 3].map((i) => `${PREFIX}s${i}`);
      const first = await startHost(config, stateDir);
      for (const id of ids) expect((await first.api("POST", "/v1/sessions", { id })).status).toBe(201);
      const before = new Map<string, string>();
      for (const id of ids) {
        const s = await first.api("GET", `/v1/sessions/${id}?waitMs=90000`);
        expect(s.body.status, JSON.stringify(s.body)).toBe("ready");
        const done = await run(first, id, `echo before-${id}`);
        expect(done.observation.content).toContain(`before-${id}`);
        const containers = await containersOf(id);
        expect(containers).toHaveLength(1);
        before.set(id, containers[0]!);
      }

      await first.kill();
      for (const id of ids)
        expect((await engine.inspectContainer(before.get(id)!))?.State.Running).toBe(true);

      const second = await startHost(config, stateDir);
      for (const id of ids) {
        const s = await second.api("GET", `/v1/sessions/${id}?waitMs=90000`);
        expect(s.body.status, JSON.stringify(s.body)).toBe("ready");
        const done = await run(second, id, `echo after-${id}`);
        expect(done.status).toBe("completed");
        expect(done.observation.content).toContain(`after-${id}`);
        // The same container, and no second one.
        expect(await containersOf(id)).toEqual([before.get(id)]);
      }
      expect(second.stderr().match(/re-attaching session after restart/g)).toHaveLength(3);

      for (const id of ids) {
        const del = await second.api("DELETE", `/v1/sessions/${id}`);
        expect(del.body.status).toBe("closed");
        expect(await containersOf(id)).toEqual([]);
      }
      await second.stop();

      const ledger = ledgerOf(stateDir);
      try {
        expect(ledger.openLeases()).toEqual([]);
        const leases = ledger.report({ by: "session" }).filter((row) => ids.includes(row.key));
        expect(leases.map((row) => row.key).sort()).toEqual(ids);
      } finally {
        ledger.close();
      }
    }, 300_000);

    test("a create interrupted by kill -9 leaves no container: the restarted host's orphan sweep removes it and settles its lease", async () => {
      const stateDir = join(dir.path, "state-interrupted");
      const config = dockerConfig("interrupted");
      const id = `${PREFIX}cut`;
      const first = await startHost(config, stateDir);
      // The server in this container waits 60 s before it starts (a slow start), so the host is mid-create.
      const slow = "--import=data:text/javascript,await(Reflect.construct(Promise,[r=>setTimeout(r,60000)]))";
      const created = await first.api("POST", "/v1/sessions", { id, env: { NODE_OPTIONS: slow } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.status).toBe("starting");
      const deadline = Date.now() + 60_000;
      let orphan: string[] = [];
      while (orphan.length === 0 && Date.now() < deadline) {
        orphan = await containersOf(id);
        if (orphan.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(orphan).toHaveLength(1);
      await first.kill();
      // The container outlives the host that was creating it.
      expect(await containersOf(id)).toEqual(orphan);
      const leaseId = (await engine.inspectContainer(orphan[0]!))?.Config.Labels?.["agent-runtime.lease"];
      expect(leaseId).toMatch(/\S/);

      const second = await startHost(config, stateDir);
      const s = await second.api("GET", `/v1/sessions/${id}`);
      expect(s.body.status).toBe("error");
      expect(s.body.error.message).toContain("Interrupted by host restart while the sandbox was starting");
      // The sweep runs once the restarted host has recovered its sessions; it logs what it did.
      const swept = /info orphan sweep \{"provider":"docker","listed":\d+,"terminated":1,/;
      const until = Date.now() + 30_000;
      while (!swept.test(second.stderr()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(second.stderr()).toMatch(swept);
      expect(second.stderr()).toContain(`Terminated orphan sandbox ${orphan[0]}: its lease was settled`);
      expect(await containersOf(id)).toEqual([]);
      expect((await second.api("DELETE", `/v1/sessions/${id}`)).body.status).toBe("closed");
      await second.stop();

      const ledger = ledgerOf(stateDir);
      try {
        expect(ledger.getLease(leaseId!)).toMatchObject({ status: "settled" });
        expect(ledger.openLeases()).toEqual([]);
      } finally {
        ledger.close();
      }
    }, 300_000);
  });
}
