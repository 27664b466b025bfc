import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startModalEmulator } from "@agent-runtime/modal-emulator";
import { silentLogger } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, test } from "vitest";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import { startServer } from "../src/server.js";
import {
  emulatorRuntimeOptions,
  type Json,
  readySession,
  startTestServer,
  type TestServer,
  tempDir,
} from "./helpers.js";

// Live output end to end: a real host and its HTTP API on 127.0.0.1 (token auth), a real local sandbox (the
// action-server's streaming form underneath), read by SSE clients as the command runs.

const dir = tempDir();
const servers: TestServer[] = [];
afterAll(async () => {
  for (const t of servers) await t.stop();
  dir.cleanup();
});

const FIVE_LINES = "for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done";

interface Received {
  event: string;
  id: number | undefined;
  data: Json;
  /** performance.now() when the frame arrived. */
  at: number;
}

/**
 * Opens an SSE stream with the bearer token and collects frames, each timestamped, until `until` says so or
 * the stream ends. `opened` resolves once the response headers arrived (the subscription is in place).
 */
function follow(
  t: TestServer,
  path: string,
  until: (events: Received[]) => boolean,
  timeoutMs = 30_000,
): { opened: Promise<void>; events: Promise<Received[]>; ended: () => boolean } {
  let markOpened = () => {};
  const opened = new Promise<void>((r) => {
    markOpened = r;
  });
  let streamEnded = false;
  const events = (async () => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    const out: Received[] = [];
    try {
      const res = await fetch(`${t.url}${path}`, {
        headers: { authorization: `Bearer ${t.token}` },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      markOpened();
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (!until(out)) {
        const { done, value } = await reader.read();
        if (done) {
          streamEnded = true;
          break;
        }
        const at = performance.now();
        buffer += value;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(frame)?.[1];
          const data = /^data: (.+)$/m.exec(frame)?.[1];
          const id = /^id: (\d+)$/m.exec(frame)?.[1];
          if (event && data)
            out.push({ event, id: id === undefined ? undefined : Number(id), data: JSON.parse(data), at });
        }
      }
      await reader.cancel().catch(() => undefined);
    } finally {
      clearTimeout(timer);
      abort.abort();
      markOpened();
    }
    return out;
  })();
  return { opened, events, ended: () => streamEnded };
}

const finished = (taskId: () => string | undefined) => (events: Received[]) =>
  events.some(
    (e) =>
      e.event === "task" &&
      e.data.task.id === taskId() &&
      !["queued", "running"].includes(e.data.task.status),
  );

async function submit(t: TestServer, sessionId: string, command: string): Promise<string> {
  const sub = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
    body: { action: "run", args: { command, blocking: true }, timeout: 60 },
  });
  expect(sub.status).toBe(202);
  return sub.body.id as string;
}

/** Follows the session's events, runs `command` in it, and returns its task id, output events and completed event. */
async function runFollowed(
  t: TestServer,
  sessionId: string,
  command: string,
): Promise<{ taskId: string; outputs: Received[]; done: Received }> {
  let taskId: string | undefined;
  const stream = follow(
    t,
    `/v1/sessions/${sessionId}/events`,
    finished(() => taskId),
  );
  await stream.opened;
  taskId = await submit(t, sessionId, command);
  const events = await stream.events;
  const outputs = events.filter((e) => e.event === "output");
  const done = events.find(
    (e) => e.event === "task" && e.data.task.id === taskId && e.data.task.status === "completed",
  )!;
  return { taskId, outputs, done };
}

describe("output events", () => {
  let t: TestServer;
  let sessionId: string;

  test("a session's SSE client sees a command's lines one by one before it ends; they are not stored", async () => {
    t = await startTestServer({ storage: { path: join(dir.path, "host.db") } });
    servers.push(t);
    sessionId = await readySession(t, { id: "live" });
    const { taskId, outputs, done } = await runFollowed(t, sessionId, FIVE_LINES);
    expect(done).toBeDefined();
    expect(outputs.map((e) => e.data.content).join("")).toBe("line1\nline2\nline3\nline4\nline5\n");
    expect(outputs.length).toBeGreaterThanOrEqual(5);
    // Line by line, as printed: the first long before the task's end, spread over the run.
    expect(outputs[0]!.at).toBeLessThan(done.at - 300);
    expect(outputs.at(-1)!.at - outputs[0]!.at).toBeGreaterThan(300);
    for (const [i, e] of outputs.entries()) {
      expect(e.id).toBeUndefined();
      expect(e.data).toMatchObject({ taskId, seq: i + 1, at: expect.any(String) });
    }
    expect(done.data.task.observation.content).toBe("line1\nline2\nline3\nline4\nline5");
    // Not in the event log: a replay from the start has the task events and no output.
    const replay = follow(
      t,
      `/v1/sessions/${sessionId}/events?after=0`,
      finished(() => taskId),
    );
    const replayed = await replay.events;
    expect(replayed.some((e) => e.event === "task" && e.data.task.id === taskId)).toBe(true);
    expect(replayed.some((e) => e.event === "output")).toBe(false);
  });

  test("a printed line reaches the SSE client within 50 ms (median of six, printed with its clock time)", async () => {
    let taskId: string | undefined;
    const stream = follow(
      t,
      `/v1/sessions/${sessionId}/events`,
      finished(() => taskId),
    );
    await stream.opened;
    taskId = await submit(t, sessionId, "for i in 1 2 3 4 5 6; do date +%s%N; sleep 0.15; done");
    const latencies: number[] = [];
    for (const e of (await stream.events).filter((x) => x.event === "output")) {
      for (const text of (e.data.content as string).split("\n").filter(Boolean))
        latencies.push(performance.timeOrigin + e.at - Number(BigInt(text) / 1_000_000n));
    }
    latencies.sort((a, b) => a - b);
    console.log(`host SSE latency ms: ${latencies.map((l) => l.toFixed(1)).join(", ")}`);
    expect(latencies).toHaveLength(6);
    expect(latencies[3]!).toBeLessThan(50);
  });

  test("a task's SSE stream: snapshot, its output live, the final task, then the end", async () => {
    const taskId = await submit(t, sessionId, `sleep 0.3; ${FIVE_LINES}`);
    const stream = follow(t, `/v1/tasks/${taskId}/events`, () => false);
    const events = await stream.events;
    expect(stream.ended()).toBe(true);
    expect(events[0]).toMatchObject({ event: "task", data: { task: { id: taskId } } });
    const outputs = events.filter((e) => e.event === "output");
    expect(outputs.map((e) => e.data.content).join("")).toBe("line1\nline2\nline3\nline4\nline5\n");
    expect(outputs.every((e) => e.data.taskId === taskId)).toBe(true);
    const last = events.at(-1)!;
    expect(last).toMatchObject({ event: "task", data: { task: { id: taskId, status: "completed" } } });
    expect(outputs[0]!.at).toBeLessThan(last.at - 300);
    // A finished task's stream is its snapshot only.
    const again = follow(t, `/v1/tasks/${taskId}/events`, () => false);
    const snapshot = await again.events;
    expect(again.ended()).toBe(true);
    expect(snapshot).toHaveLength(1);
    expect(snapshot[0]!.data.task.status).toBe("completed");
    expect((await t.request("GET", "/v1/tasks/t_nope/events")).status).toBe(404);
    expect((await t.request("GET", `/v1/tasks/${taskId}/events`, { token: null })).status).toBe(401);
  });

  test("a task stream opened late starts with the output printed so far", async () => {
    const taskId = await submit(t, sessionId, "echo early; sleep 0.6; echo late");
    await new Promise((r) => setTimeout(r, 300));
    const events = await follow(t, `/v1/tasks/${taskId}/events`, () => false).events;
    const text = events
      .filter((e) => e.event === "output")
      .map((e) => e.data.content)
      .join("");
    expect(text).toBe("early\nlate\n");
  });

  test("an SSE client that goes away mid-output changes nothing for the task", async () => {
    let taskId: string | undefined;
    const stream = follow(t, `/v1/sessions/${sessionId}/events`, (events) =>
      events.some((e) => e.event === "output" && e.data.taskId === taskId),
    );
    await stream.opened;
    taskId = await submit(t, sessionId, `${FIVE_LINES}; echo done`);
    const seen = await stream.events;
    expect(seen.some((e) => e.event === "output")).toBe(true);
    const done = await t.request("GET", `/v1/tasks/${taskId}?waitMs=30000`);
    expect(done.body.status).toBe("completed");
    expect(done.body.observation.content).toBe("line1\nline2\nline3\nline4\nline5\ndone");
  });
});

describe("output events and secrets", () => {
  test("a secret printed in two pieces 200 ms apart is redacted in the output events, never sent or stored", async () => {
    const secret = `sk-${randomBytes(16).toString("hex")}`;
    const t = await startTestServer({
      storage: { path: join(dir.path, "secrets.db") },
      secrets: {
        enabled: true,
        options: { providers: [{ type: "env", prefix: "", names: ["TOKEN"], source: { TOKEN: secret } }] },
      },
    });
    servers.push(t);
    const sessionId = await readySession(t, { id: "secret" });
    let taskId: string | undefined;
    const stream = follow(
      t,
      `/v1/sessions/${sessionId}/events`,
      finished(() => taskId),
    );
    await stream.opened;
    const half = Math.floor(secret.length / 2);
    taskId = await submit(
      t,
      sessionId,
      `printf 'token=%s' "\${TOKEN:0:${half}}"; sleep 0.2; printf '%s end\\n' "\${TOKEN:${half}}"; echo after`,
    );
    const events = await stream.events;
    const outputs = events.filter((e) => e.event === "output").map((e) => e.data.content as string);
    expect(outputs.join("")).toBe("token=[redacted] end\nafter\n");
    const raw = JSON.stringify(events);
    for (const piece of [secret, secret.slice(0, half), secret.slice(half)]) expect(raw).not.toContain(piece);
    const done = events.find(
      (e) => e.event === "task" && e.data.task.id === taskId && e.data.task.status === "completed",
    )!;
    expect(done.data.task.observation.content).toBe("token=[redacted] end\nafter");
    for (const file of [t.host.store.path, `${t.host.store.path}-wal`])
      expect(readFileSync(file).includes(Buffer.from(secret.slice(0, half)))).toBe(false);
  });
});

describe("output events on the modal runtime", () => {
  test("through the real modal SDK and modal-emulator's TLS tunnel, lines arrive one by one", async () => {
    const emulator = await startModalEmulator({});
    const host = await AgentHost.open(
      parseHostConfig({
        runtime: {
          plugin: "modal",
          options: emulatorRuntimeOptions(emulator, { appName: `live-output-${process.pid}` }),
        },
        server: { host: "127.0.0.1", port: 0 },
        secrets: { enabled: false },
        storage: { path: join(dir.path, "modal.db"), stateDir: dir.path },
      }),
      { logger: silentLogger, env: {} },
    );
    const server = await startServer(host, { env: {} });
    const token = readFileSync(server.tokenFile!, "utf8").trim();
    const t = {
      url: server.url,
      token,
      async request(method: string, path: string, options: { body?: unknown } = {}) {
        const res = await fetch(`${server.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        });
        return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
      },
    } as unknown as TestServer;
    try {
      const sessionId = await readySession(t, { id: "modal-live" });
      const { outputs, done } = await runFollowed(t, sessionId, FIVE_LINES);
      expect(outputs.map((e) => e.data.content).join("")).toBe("line1\nline2\nline3\nline4\nline5\n");
      expect(outputs.length).toBeGreaterThanOrEqual(5);
      expect(outputs[0]!.at).toBeLessThan(done.at - 300);
    } finally {
      await server.close();
      await host.close({ closeSessions: true });
      await emulator.close();
    }
  }, 120_000);
});
