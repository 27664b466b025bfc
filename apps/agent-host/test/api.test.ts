import { statSync } from "node:fs";
import { join } from "node:path";
import { ActionSchema, cmdRun, isRuntimeError, silentLogger } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { actionBody, createSessionBody } from "../src/api/bodies.js";
import { openApiPath } from "../src/api/openapi.js";
import { apiRoutes } from "../src/api/routes.js";
import { CreateSessionBodySchema } from "../src/api/schemas.js";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import { startServer } from "../src/server.js";
import { type Json, readySession, runCommand, startTestServer, type TestServer, tempDir } from "./helpers.js";

const dir = tempDir();
let t: TestServer;
let sessionId: string;

beforeAll(async () => {
  t = await startTestServer({ storage: { path: join(dir.path, "host.db") } });
  sessionId = await readySession(t, { id: "main", labels: { team: "qa" } });
});

afterAll(async () => {
  await t?.stop();
  dir.cleanup();
});

/** Reads server-sent events until `until` returns true (or the stream ends). */
async function readEvents(
  url: string,
  headers: Record<string, string>,
  until: (events: Json[]) => boolean,
  timeoutMs = 20_000,
): Promise<Json[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: Json[] = [];
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${t.token}`, ...headers },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!until(events)) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        const event = /^event: (.+)$/m.exec(frame)?.[1];
        const data = /^data: (.+)$/m.exec(frame)?.[1];
        const id = /^id: (\d+)$/m.exec(frame)?.[1];
        if (event && data)
          events.push({ event, id: id === undefined ? undefined : Number(id), data: JSON.parse(data) });
      }
    }
    await reader.cancel().catch(() => undefined);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

describe("happy paths", () => {
  test("a session starts in the background and becomes ready", async () => {
    const s = await t.request("GET", `/v1/sessions/${sessionId}`);
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      id: "main",
      backend: "local",
      status: "ready",
      runtimeStatus: "STATUS$READY",
      labels: { team: "qa" },
      error: null,
    });
    expect(JSON.stringify(s.body)).not.toMatch(/sessionApiKey|handle/i);
    const list = await t.request("GET", "/v1/sessions");
    expect(list.body.sessions.map((x: Json) => x.id)).toContain("main");
  });

  test("actions return 202 at once; the task carries the observation", async () => {
    const sub = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "run", args: { command: "echo hello-$((40+2))" } },
    });
    expect(sub.status).toBe(202);
    expect(sub.body).toMatchObject({
      sessionId,
      status: expect.stringMatching(/queued|running/),
      observation: null,
    });
    expect(sub.body.action).toMatchObject({
      action: "run",
      args: { command: "echo hello-$((40+2))", is_input: false },
    });
    const done = await t.request("GET", `/v1/tasks/${sub.body.id}?waitMs=20000`);
    expect(done.body.status).toBe("completed");
    expect(done.body.observation.observation).toBe("run");
    expect(done.body.observation.content).toContain("hello-42");
    expect(done.body.observation.extras.metadata.exit_code).toBe(0);
    expect(done.body.durationMs).toBeGreaterThanOrEqual(0);
  });

  test("actions of a session run in order; file actions work; the list shows them", async () => {
    const write = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "write", args: { path: "notes.txt", content: "one\ntwo\n" } },
    });
    const cat = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "run", args: { command: "cat notes.txt; exit 3" } },
    });
    expect(cat.body.seq).toBe(write.body.seq + 1);
    const done = await t.request("GET", `/v1/tasks/${cat.body.id}?waitMs=20000`);
    expect(done.body.status).toBe("completed");
    expect(done.body.observation.content).toContain("two");
    expect(done.body.observation.extras.metadata.exit_code).toBe(3);
    const tasks = await t.request("GET", `/v1/sessions/${sessionId}/tasks?afterSeq=${write.body.seq - 1}`);
    expect(tasks.body.tasks.map((x: Json) => x.id)).toEqual([write.body.id, cat.body.id]);
    expect(tasks.body.tasks[0].status).toBe("completed");
  });

  test("long-polling: waitMs returns early when the task finishes, and the task as it is when the wait ends", async () => {
    const sub = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "run", args: { command: "sleep 1.5; echo slept", blocking: true } },
    });
    const t0 = Date.now();
    const early = await t.request("GET", `/v1/tasks/${sub.body.id}?waitMs=200`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(["queued", "running"]).toContain(early.body.status);
    const noWait = await t.request("GET", `/v1/tasks/${sub.body.id}`);
    expect(["queued", "running"]).toContain(noWait.body.status);
    const t1 = Date.now();
    const done = await t.request("GET", `/v1/tasks/${sub.body.id}?waitMs=20000`);
    expect(done.body.status).toBe("completed");
    expect(done.body.observation.content).toContain("slept");
    expect(Date.now() - t1).toBeLessThan(10_000);
  });

  test("SSE: a snapshot, then task events up to the observation; Last-Event-ID replays without gaps", async () => {
    const headers = {};
    const streaming = readEvents(`${t.url}/v1/sessions/${sessionId}/events`, headers, (events) =>
      events.some(
        (e) =>
          e.event === "task" &&
          e.data.task.status === "completed" &&
          e.data.task.action.args.command === "echo via-sse",
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    const sub = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "run", args: { command: "echo via-sse" } },
    });
    const events = await streaming;
    expect(events[0]).toMatchObject({
      event: "session",
      data: { session: { id: sessionId, status: "ready" } },
    });
    const mine = events.filter((e) => e.event === "task" && e.data.task.id === sub.body.id);
    expect(mine.map((e) => e.data.task.status)).toEqual(["queued", "running", "completed"]);
    expect(mine[2].data.task.observation.content).toContain("via-sse");
    const ids = mine.map((e) => e.id);
    expect(ids.every((id: number, i: number) => i === 0 || id > ids[i - 1])).toBe(true);

    const replay = await readEvents(
      `${t.url}/v1/sessions/${sessionId}/events`,
      { "last-event-id": String(ids[0]) },
      (ev) => ev.length >= 2,
    );
    expect(replay.slice(0, 2).map((e) => e.id)).toEqual(ids.slice(1));
    const fromStart = await readEvents(`${t.url}/v1/sessions/${sessionId}/events?after=0`, {}, (ev) =>
      ev.some((e) => e.id === ids[2]),
    );
    expect(fromStart[0]).toMatchObject({ event: "session", data: { session: { status: "starting" } } });
  });

  test("costs: settled spend and budgets from cost-guard", async () => {
    const c = await t.request("GET", "/v1/costs?by=provider");
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ enabled: true, plugin: "cost-guard", by: "provider", budgets: [] });
    expect(c.body.totalUsd).toBe(0);
  });

  test("delete closes the session, cancels nothing twice, and refuses new actions", async () => {
    const id = await readySession(t);
    const del = await t.request("DELETE", `/v1/sessions/${id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ id, status: "closed" });
    expect(del.body.closedAt).not.toBeNull();
    expect((await t.request("DELETE", `/v1/sessions/${id}`)).body.status).toBe("closed");
    const refused = await t.request("POST", `/v1/sessions/${id}/actions`, {
      body: { action: "run", args: { command: "true" } },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "FAILED_PRECONDITION" });
    expect(refused.body.error.message).toContain("closed");
    // The event stream of a closed session replays its history and ends.
    const history = await readEvents(`${t.url}/v1/sessions/${id}/events?after=0`, {}, () => false);
    expect(history.map((e) => e.data.session?.status).filter(Boolean)).toEqual([
      "starting",
      "ready",
      "closing",
      "closed",
    ]);
    const costs = await t.request("GET", "/v1/costs?by=session");
    expect(costs.body.rows.some((r: Json) => r.key === id && r.leases === 1)).toBe(true);
  });

  test("a failing sandbox start shows as status error; queued actions fail with the reason", async () => {
    const bad = await AgentHost.open(
      parseHostConfig({
        runtime: { options: { isolation: "none", startupTimeoutMs: 1 } },
        storage: { path: ":memory:", stateDir: join(dir.path, "bad-state") },
        secrets: { enabled: false },
        sessions: { maxSessions: 1 },
      }),
      { logger: silentLogger },
    );
    try {
      const s = await bad.createSession({});
      const task = bad.submitAction(s.id, cmdRun("true"));
      // sessions.maxSessions is 1 here: a second session while the first is starting is refused.
      await expect(bad.createSession({})).rejects.toThrow(/sessions\.maxSessions/);
      const after = await bad.waitSession(s.id, 20_000);
      expect(after.status).toBe("error");
      expect(after.error).toMatchObject({ code: "TIMEOUT" });
      expect(after.error?.message).toContain("startupTimeoutMs");
      const failed = await bad.waitTask(task.id, 5_000);
      expect(failed.status).toBe("failed");
      expect(failed.error?.message).toContain("failed to start");
    } finally {
      await bad.close({ closeSessions: true });
    }
  });

  test("a budget refuses a sandbox before it exists: 402 at once with the budget's numbers, shown in /v1/costs", async () => {
    const priced = await startTestServer({
      storage: { path: ":memory:" },
      cost: {
        options: {
          prices: { providers: { local: { cpuPerCoreSecondUsd: 0.001 } } },
          budgets: [{ name: "tiny", scope: "global", period: "daily", limitUsd: 0.5 }],
        },
      },
    });
    try {
      const created = await priced.request("POST", "/v1/sessions", { body: { id: "over" } });
      expect(created.status).toBe(402);
      expect(created.body.error.code).toBe("BUDGET_EXCEEDED");
      expect(created.body.error.message).toContain("tiny");
      expect(created.body.error.details).toMatchObject({ budget: "tiny", limitUsd: 0.5, currency: "USD" });
      expect((await priced.request("GET", "/v1/sessions/over")).status).toBe(404);
      const costs = await priced.request("GET", "/v1/costs");
      expect(costs.body.budgets).toEqual([
        expect.objectContaining({ budget: "tiny", limitUsd: 0.5, spentUsd: 0, reservedUsd: 0 }),
      ]);
    } finally {
      await priced.stop();
    }
  });

  test("the store file is private (mode 0600)", () => {
    expect(statSync(join(dir.path, "host.db")).mode & 0o777).toBe(0o600);
  });
});

describe("bad requests", () => {
  test("invalid bodies -> 400 with every field path", async () => {
    const s = await t.request("POST", "/v1/sessions", {
      body: { id: "bad id!", labels: { ok: 5 }, extra: true },
    });
    expect(s.status).toBe(400);
    expect(s.body.error.code).toBe("INVALID_ARGUMENT");
    const issues: string[] = s.body.error.issues;
    expect(issues.some((i) => i.startsWith("body.id:"))).toBe(true);
    expect(issues.some((i) => i.startsWith("body.labels.ok:"))).toBe(true);
    expect(issues.some((i) => i.startsWith("body:") && i.includes("extra"))).toBe(true);

    const a = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "run", args: { command: 5 } },
    });
    expect(a.status).toBe(400);
    expect(a.body.error.issues.some((i: string) => i.startsWith("body.args.command:"))).toBe(true);

    const unknown = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "fly", args: {} },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues[0]).toMatch(
      /^body\.action: unknown action type "fly"; expected one of run, /,
    );

    const json = await t.request("POST", "/v1/sessions", { rawBody: "{nope" });
    expect(json.status).toBe(400);
    expect(json.body.error.issues).toEqual(["body: not valid JSON"]);

    const q = await t.request("GET", `/v1/tasks/x?waitMs=-5`);
    expect(q.status).toBe(400);
    expect(q.body.error.issues[0]).toMatch(/^query\.waitMs:/);
    const by = await t.request("GET", "/v1/costs?by=planet");
    expect(by.body.error.issues[0]).toMatch(/^query\.by:/);
  });

  test("a body over server.maxBodyBytes -> 413", async () => {
    const big = "x".repeat(1024 * 1024 + 10);
    const r = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
      body: { action: "run", args: { command: big } },
    });
    expect(r.status).toBe(413);
    expect(r.body.error.issues).toEqual(["body: too large"]);
  });

  test("unknown ids -> 404", async () => {
    for (const [method, path] of [
      ["GET", "/v1/sessions/nope"],
      ["DELETE", "/v1/sessions/nope"],
      ["GET", "/v1/sessions/nope/tasks"],
      ["GET", "/v1/sessions/nope/events"],
      ["GET", "/v1/tasks/nope?waitMs=10"],
      ["GET", "/v1/nothing-here"],
    ] as const) {
      const r = await t.request(method, path);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error.code).toBe("NOT_FOUND");
    }
    const a = await t.request("POST", "/v1/sessions/nope/actions", {
      body: { action: "run", args: { command: "true" } },
    });
    expect(a.status).toBe(404);
    expect(a.body.error.message).toContain('No session "nope"');
  });

  test("duplicate session id -> 409", async () => {
    const r = await t.request("POST", "/v1/sessions", { body: { id: "main" } });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe("ALREADY_EXISTS");
  });
});

describe("auth", () => {
  const token = "a-test-token-of-some-length-1234";
  let authed: TestServer;
  beforeAll(async () => {
    authed = await startTestServer({ token, storage: { path: ":memory:" } });
  });
  afterAll(async () => {
    await authed?.stop();
  });

  test("missing or wrong token -> 401; the right one passes; health and the OpenAPI document stay public", async () => {
    const missing = await authed.request("GET", "/v1/sessions", { token: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toContain("Bearer");
    expect(missing.body.error).toMatchObject({ code: "UNAUTHORIZED" });
    expect(missing.body.error.message).toContain("Authorization: Bearer");
    const wrong = await authed.request("POST", "/v1/sessions", {
      token: "wrong-token-wrong-token",
      body: {},
    });
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain(token);
    expect((await authed.request("GET", "/v1/sessions")).status).toBe(200);
    expect((await authed.request("GET", "/health", { token: null })).status).toBe(200);
    const doc = await authed.request("GET", "/openapi.json", { token: null });
    expect(doc.body.paths["/v1/sessions"].get.security).toEqual([{ bearerAuth: [] }]);
  });

  test("refuses a non-loopback address with auth off, and short tokens", async () => {
    const host = await AgentHost.open(
      parseHostConfig({
        storage: { path: ":memory:", stateDir: join(dir.path, "auth-off") },
        server: { auth: false },
        secrets: { enabled: false },
      }),
    );
    try {
      const open = await startServer(host, { host: "0.0.0.0", port: 0, env: {} }).catch((e: unknown) => e);
      expect(isRuntimeError(open, "UNAUTHORIZED")).toBe(true);
      expect((open as Error).message).toContain("AGENT_HOST_TOKEN");
      const short = await startServer(host, { port: 0, token: "short" }).catch((e: unknown) => e);
      expect(isRuntimeError(short, "INVALID_ARGUMENT")).toBe(true);
    } finally {
      await host.close();
    }
  });
});

describe("OpenAPI", () => {
  test("/openapi.json is OpenAPI 3.1 and documents every route the app serves", async () => {
    const doc = await t.request("GET", "/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    const { createApp } = await import("../src/api/app.js");
    const { app } = createApp(t.host);
    const served = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path).path}`),
    );
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.body.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) documented.add(`${method} ${path}`);
    }
    expect([...served].sort()).toEqual([...documented].sort());
    expect(served.size).toBeGreaterThanOrEqual(11);
    const submit = doc.body.paths["/v1/sessions/{id}/actions"].post;
    expect(submit.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/Action",
    });
    expect(Object.keys(submit.responses)).toEqual(expect.arrayContaining(["202", "400", "404"]));
    expect(doc.body.components.schemas.Task.properties.status.enum).toEqual([
      "queued",
      "running",
      "completed",
      "failed",
      "cancelled",
    ]);
    expect(doc.body.paths["/v1/tasks/{id}"].get.parameters.map((p: Json) => p.name)).toEqual([
      "id",
      "waitMs",
    ]);
  });

  test("each route parses its body with the schema the document shows", () => {
    const byId = new Map(apiRoutes(t.host).map((r) => [r.operationId, r]));
    expect(byId.get("createSession")?.body).toBe(CreateSessionBodySchema);
    expect(byId.get("submitAction")?.body).toBe(ActionSchema);
    expect(createSessionBody.schema).toBe(CreateSessionBodySchema);
    expect(actionBody.schema).toBe(ActionSchema);
    // What the route hands the host: defaults filled once, at the route.
    const action = actionBody.parse({ action: "run", args: { command: "ls" } });
    expect(action).toMatchObject({
      action: "run",
      args: { command: "ls", blocking: false, is_input: false },
    });
    expect(createSessionBody.parse(undefined)).toEqual({ labels: {} });
    expect(() => createSessionBody.parse({ cpu: 2, memory: 512 })).toThrow(
      'Invalid session:\n  body.cpu: this option is now "cpuCores"\n  body.memory: this option is now "memoryMiB"',
    );
  });
});

test("runCommand helper sanity: a command's output comes back", async () => {
  const task = await runCommand(t, sessionId, "printf '%s' ok");
  expect(task.observation.content).toContain("ok");
});
