import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ModalEmulator, startModalEmulator } from "@agent-runtime/modal-emulator";
import { SESSION_OVERRIDE_FIELDS, silentLogger } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import type { HostConfig } from "../src/options.js";
import { startServer } from "../src/server.js";
import {
  emulatorRuntimeOptions,
  type Json,
  readySession,
  runBlocking,
  runCommand,
  startTestServer,
  tempDir,
} from "./helpers.js";

let emulator: ModalEmulator;
const dir = tempDir("agent-host-overrides-");
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  emulator = await startModalEmulator({ strict: true });
});
afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  await emulator?.close();
  dir.cleanup();
});

interface ModalHost {
  host: AgentHost;
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  stop(options?: { keepSessions?: boolean }): Promise<void>;
}

/** A host on the modal runtime against the offline modal-emulator (the real `modal` SDK over gRPC). */
async function modalHost(db: string, extra: HostConfig = {}): Promise<ModalHost> {
  const config = parseHostConfig({
    ...extra,
    runtime: {
      plugin: "modal",
      options: emulatorRuntimeOptions(emulator, {
        appName: `overrides-${process.pid}`,
        livenessIntervalMs: 250,
        cpuCores: 0.25,
        cpuLimitCores: 1,
        memoryMiB: 512,
      }),
    },
    server: { host: "127.0.0.1", port: 0 },
    secrets: { enabled: false },
    storage: { path: db, stateDir: dir.path },
  });
  const host = await AgentHost.open(config, { logger: silentLogger, env: {} });
  const server = await startServer(host, { env: {} });
  const token = readFileSync(server.tokenFile!, "utf8").trim();
  let stopped = false;
  const stop = async (options: { keepSessions?: boolean } = {}) => {
    if (stopped) return;
    stopped = true;
    await server.close();
    await host.close({ closeSessions: !options.keepSessions });
  };
  stops.push(stop);
  return {
    host,
    stop,
    async request(method, path, body) {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}

async function ready(t: ModalHost, id: string): Promise<Json> {
  const got = await t.request("GET", `/v1/sessions/${id}?waitMs=30000`);
  expect(got.body.status, JSON.stringify(got.body)).toBe("ready");
  return got.body;
}

describe("POST /v1/sessions with per-session overrides (modal runtime, modal-emulator)", () => {
  test("one host runs a CPU session and a GPU session; the shape survives a restart", async () => {
    const db = join(dir.path, "shapes.db");
    const first = await modalHost(db);
    const cpu = await first.request("POST", "/v1/sessions", { id: "cpu-1" });
    expect(cpu.status, JSON.stringify(cpu.body)).toBe(201);
    const shape = {
      gpu: "T4",
      cpuCores: 0.5,
      memoryMiB: 1024,
      timeoutMs: 600_000,
      idleTimeoutMs: 120_000,
      env: { SHAPE: "gpu" },
    };
    const gpu = await first.request("POST", "/v1/sessions", {
      id: "gpu-1",
      ...shape,
      labels: { kind: "training" },
      userId: "alice",
    });
    expect(gpu.status, JSON.stringify(gpu.body)).toBe(201);
    expect(gpu.body.userId).toBe("alice");
    // The overrides are the shape asked for: labels and userId are not overrides.
    expect(gpu.body.overrides).toEqual(shape);
    expect(cpu.body.overrides).toEqual({});
    expect(cpu.body.userId).toBeNull();
    await ready(first, "cpu-1");
    await ready(first, "gpu-1");

    const running = emulator
      .listSandboxes()
      .filter((s) => s.running && s.appName === `overrides-${process.pid}`);
    const bySession = new Map(running.map((s) => [s.tags["agent-runtime.session"], s]));
    expect(bySession.get("cpu-1")?.gpu).toBeUndefined();
    expect(bySession.get("gpu-1")?.gpu).toBe("T4");
    expect(bySession.get("gpu-1")?.tags.kind).toBe("training");

    expect((await runBlocking(first, "gpu-1", "echo shape=$SHAPE.")).observation.content).toContain(
      "shape=gpu",
    );
    expect((await runBlocking(first, "cpu-1", "echo shape=$SHAPE.")).observation.content).toContain(
      "shape=.",
    );

    // What the backend refuses comes back as 400 with every issue.
    const bad = await first.request("POST", "/v1/sessions", { id: "bad-1", gpu: "Z100", cpuCores: 8 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("INVALID_ARGUMENT");
    expect(bad.body.error.message).toContain('gpu: Unknown GPU type "Z100"');
    expect(bad.body.error.message).toContain("cpuCores: must not exceed the provider's cpuLimitCores (1)");
    expect((await first.request("GET", "/v1/sessions/bad-1")).status).toBe(404);
    const renamed = await first.request("POST", "/v1/sessions", { id: "bad-2", cpu: 2 });
    expect(renamed.status).toBe(400);
    expect(renamed.body.error.issues.join("\n")).toContain("cpu");

    // The OpenAPI document follows the body schema.
    const doc = await first.request("GET", "/openapi.json");
    const body = doc.body.components.schemas.CreateSessionBody;
    for (const field of SESSION_OVERRIDE_FIELDS) expect(Object.keys(body.properties)).toContain(field);
    expect(body.properties.gpu.description).toContain("TYPE:N");
    expect(Object.keys(doc.body.components.schemas.Session.properties)).toContain("overrides");

    // A restarted host re-attaches both sessions with the shape they were created with.
    await first.stop({ keepSessions: true });
    const second = await modalHost(db);
    await second.host.recovered;
    const again = await ready(second, "gpu-1");
    expect(again.overrides.gpu).toBe("T4");
    expect(again.userId).toBe("alice");
    expect(again.labels).toEqual({ kind: "training" });
    expect((await runBlocking(second, "gpu-1", "echo shape=$SHAPE.")).observation.content).toContain(
      "shape=gpu",
    );
    await ready(second, "cpu-1");
    await second.stop();
  }, 120_000);

  test("a per-user budget refuses the second user's session (402) while the first user's session runs on", async () => {
    const db = join(dir.path, "budgets.db");
    // Each user separately: $1 in total. A CPU session (0.25 core up to 1, 512 MiB, 1 h) reserves ~$0.15;
    // an A100 for 1 h reserves ~$2.25.
    const t = await modalHost(db, {
      cost: { options: { budgets: [{ name: "per-user", scope: "user", limitUsd: 1 }] } },
    });
    const alice = await t.request("POST", "/v1/sessions", { id: "alice-1", userId: "alice" });
    expect(alice.status, JSON.stringify(alice.body)).toBe(201);
    await ready(t, "alice-1");

    const bob = await t.request("POST", "/v1/sessions", { id: "bob-1", userId: "bob", gpu: "A100" });
    expect(bob.status, JSON.stringify(bob.body)).toBe(402);
    expect(bob.body.error.code).toBe("BUDGET_EXCEEDED");
    expect(bob.body.error.details).toMatchObject({
      budget: "per-user",
      scopeKey: "user:bob",
      limitUsd: 1,
      currency: "USD",
    });
    expect(bob.body.error.details.requestedUsd).toBeGreaterThan(1);
    expect((await t.request("GET", "/v1/sessions/bob-1")).status).toBe(404);

    // Alice is unaffected: her session keeps running actions.
    const done = await runBlocking(t, "alice-1", "echo still-running");
    expect(done.status).toBe("completed");
    expect(done.observation.content).toContain("still-running");

    // The budget is per user: bob's smaller session fits his own budget.
    const bobCpu = await t.request("POST", "/v1/sessions", { id: "bob-2", userId: "bob" });
    expect(bobCpu.status, JSON.stringify(bobCpu.body)).toBe(201);
    await ready(t, "bob-2");
    const costs = (await t.request("GET", "/v1/costs")).body;
    const scopes = costs.budgets.map((b: Json) => b.scope).sort();
    expect(scopes).toEqual(["user:alice", "user:bob"]);
    await t.stop();
  }, 120_000);
});

describe("POST /v1/sessions on a backend that cannot honour a field", () => {
  test("runtime-local refuses gpu and image with 501 UNSUPPORTED naming each field; env and userId pass", async () => {
    const t = await startTestServer({ storage: { path: join(dir.path, "local.db") } });
    stops.push(() => t.stop());
    const refused = await t.request("POST", "/v1/sessions", {
      body: { id: "local-gpu", gpu: "T4", image: "python:3.12" },
    });
    expect(refused.status).toBe(501);
    expect(refused.body.error.code).toBe("UNSUPPORTED");
    expect(refused.body.error.issues).toEqual([
      expect.stringMatching(/^body\.image: the local backend cannot set this per session/),
      expect.stringMatching(
        /^body\.gpu: the local backend cannot set this per session; the local backend has no GPUs/,
      ),
    ]);
    expect((await t.request("GET", "/v1/sessions/local-gpu")).status).toBe(404);
    const id = await readySession(t, { id: "local-env", env: { GREETING: "hi" }, userId: "carol" });
    expect((await runCommand(t, id, 'echo "$GREETING"')).observation.content).toContain("hi");
    expect((await t.request("GET", `/v1/sessions/${id}`)).body).toMatchObject({
      userId: "carol",
      overrides: { env: { GREETING: "hi" } },
    });
  }, 60_000);
});
