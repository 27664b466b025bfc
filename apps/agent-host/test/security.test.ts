import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { isRuntimeError, type LogFields, type Logger, silentLogger } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, test } from "vitest";
import { apiRoutes } from "../src/api/routes.js";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import { startServer } from "../src/server.js";
import { defaultStateDir } from "../src/state-dir.js";
import { type Json, readySession, runCommand, startTestServer, type TestServer, tempDir } from "./helpers.js";

const dir = tempDir("agent-host-security-");
const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  dir.cleanup();
});

const modeOf = (path: string): number => statSync(path).mode & 0o777;
const isRoot = process.getuid?.() === 0;

/** A test path for each route: `:id` becomes a made-up id. */
const concrete = (path: string): string => path.replace(/:([A-Za-z]+)/g, "nope-$1");

describe("the API is closed by default", () => {
  test("a token file (0600) is created in the state dir (0700) and required on every /v1 route", async () => {
    const stateDir = join(dir.path, "closed-state");
    const host = await AgentHost.open(
      parseHostConfig({ storage: { stateDir }, secrets: { enabled: false }, cost: { enabled: false } }),
      { logger: silentLogger },
    );
    const server = await startServer(host, { port: 0, env: {} });
    try {
      expect(server.authRequired).toBe(true);
      expect(server.tokenFile).toBe(join(stateDir, "token"));
      expect(server.tokenCreated).toBe(true);
      expect(modeOf(stateDir)).toBe(0o700);
      expect(modeOf(server.tokenFile!)).toBe(0o600);
      const token = readFileSync(server.tokenFile!, "utf8").trim();
      // 32 random bytes or more, base64url.
      expect(token).toMatch(/^[A-Za-z0-9_-]{43,}$/);

      const routes = apiRoutes(host).filter((r) => r.path.startsWith("/v1"));
      expect(routes.length).toBeGreaterThanOrEqual(9);
      for (const route of routes) {
        expect(route.auth, `${route.method} ${route.path} requires the token`).toBe(true);
        const url = `${server.url}${concrete(route.path)}`;
        const method = route.method.toUpperCase();
        const body =
          method === "POST" ? JSON.stringify({ action: "run", args: { command: "id" } }) : undefined;
        const none = await fetch(url, { method, ...(body ? { body } : {}) });
        expect(none.status, `${method} ${route.path} without a token`).toBe(401);
        expect(none.headers.get("www-authenticate")).toContain("Bearer");
        const wrong = await fetch(url, {
          method,
          headers: { authorization: `Bearer ${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}` },
          ...(body ? { body } : {}),
        });
        expect(wrong.status, `${method} ${route.path} with a wrong token`).toBe(401);
        expect(await wrong.text()).not.toContain(token);
      }
      // The attack of the report: another sandbox's session driven through the host port.
      const attack = await fetch(`${server.url}/v1/sessions/B/actions`, {
        method: "POST",
        body: JSON.stringify({ action: "run", args: { command: "cat secret" } }),
      });
      expect(attack.status).toBe(401);
      const right = await fetch(`${server.url}/v1/sessions`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(right.status).toBe(200);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
    // The next start reuses the token; it is not created (or announced) again.
    const again = await startServer(host, { port: 0, env: {} });
    try {
      expect(again.tokenCreated).toBe(false);
      expect(again.tokenFile).toBe(join(stateDir, "token"));
    } finally {
      await again.close();
      await host.close();
    }
  });

  test("the token variable overrides the file; opting out needs server.auth false and stays loopback-only", async () => {
    const stateDir = join(dir.path, "optout-state");
    const host = await AgentHost.open(
      parseHostConfig({
        storage: { stateDir, path: ":memory:" },
        server: { auth: false },
        secrets: { enabled: false },
        cost: { enabled: false },
      }),
      { logger: silentLogger },
    );
    try {
      const open = await startServer(host, { port: 0, env: {} });
      expect(open.authRequired).toBe(false);
      expect(open.tokenFile).toBeUndefined();
      expect((await fetch(`${open.url}/v1/sessions`)).status).toBe(200);
      await open.close();
      const wide = await startServer(host, { host: "0.0.0.0", port: 0, env: {} }).catch((e: unknown) => e);
      expect(isRuntimeError(wide, "UNAUTHORIZED")).toBe(true);
      const envToken = randomBytes(24).toString("hex");
      const viaEnv = await startServer(host, { port: 0, env: { AGENT_HOST_TOKEN: envToken } });
      expect(viaEnv.authRequired).toBe(true);
      expect(viaEnv.tokenFile).toBeUndefined();
      expect((await fetch(`${viaEnv.url}/v1/sessions`)).status).toBe(401);
      const ok = await fetch(`${viaEnv.url}/v1/sessions`, {
        headers: { authorization: `Bearer ${envToken}` },
      });
      expect(ok.status).toBe(200);
      await viaEnv.close();
    } finally {
      await host.close();
    }
    expect(existsSync(join(stateDir, "token"))).toBe(false);
  });
});

describe("state lives in a private directory", () => {
  test("default state dir: $XDG_STATE_HOME/agent-host, else ~/.local/state/agent-host; never the cwd", () => {
    expect(defaultStateDir({ XDG_STATE_HOME: "/srv/state", HOME: "/home/u" })).toBe("/srv/state/agent-host");
    expect(defaultStateDir({ HOME: "/home/u" })).toBe("/home/u/.local/state/agent-host");
    expect(defaultStateDir({ XDG_STATE_HOME: "relative", HOME: "/home/u" })).toBe(
      "/home/u/.local/state/agent-host",
    );
    expect(defaultStateDir({ HOME: "/home/u" })).not.toBe(process.cwd());
  });

  test("dir 0700; database, -wal, -shm, cost ledger and token 0600", async () => {
    const stateDir = join(dir.path, "modes-state");
    const t = await startTestServer({ storage: { stateDir }, cost: { enabled: true } });
    servers.push(t);
    const id = await readySession(t);
    expect((await runCommand(t, id, "echo hi")).status).toBe("completed");
    const db = join(stateDir, "agent-host.db");
    expect(t.host.store.path).toBe(db);
    expect(modeOf(stateDir)).toBe(0o700);
    for (const file of [db, `${db}-wal`, `${db}-shm`, join(stateDir, "token"), `${db}.costs`]) {
      expect(existsSync(file), file).toBe(true);
      expect(modeOf(file), file).toBe(0o600);
    }
    for (const suffix of ["-wal", "-shm"]) {
      const file = `${db}.costs${suffix}`;
      if (existsSync(file)) expect(modeOf(file), file).toBe(0o600);
    }
  });

  test("/health keeps answering while another process holds the cost ledger's lock (the create waits, the event loop does not)", async () => {
    const stateDir = join(dir.path, "locked-ledger");
    const t = await startTestServer({ storage: { stateDir }, cost: { enabled: true } });
    servers.push(t);
    const ledger = join(stateDir, "agent-host.db.costs");
    expect(existsSync(ledger)).toBe(true);
    // A real second process takes the ledger's write lock for 1.5 s (cost-guard's SQLite driver).
    const sqlite = createRequire(
      join(import.meta.dirname, "../../../packages/cost-guard/package.json"),
    ).resolve("@agent-runtime/sqlite");
    const holder = spawn(
      process.execPath,
      [
        "-e",
        `const {open}=require(${JSON.stringify(sqlite)});const db=open(process.argv[1]);db.exec("BEGIN EXCLUSIVE");` +
          `console.log("locked");setTimeout(()=>{db.exec("COMMIT");db.close();console.log("released")},1500)`,
        ledger,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((r) => holder.stdout!.once("data", () => r()));
      // A create needs the ledger (its lease is reserved first): it waits, the event loop must not.
      const created = t.request("POST", "/v1/sessions", { body: { id: "during-lock" } });
      const times: number[] = [];
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        const t0 = performance.now();
        const res = await fetch(`${t.url}/health`);
        times.push(performance.now() - t0);
        expect(res.status).toBe(200);
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(times.length).toBeGreaterThan(10);
      // A blocking wait would hold one answer for the rest of the lock's 1.5 s; a busy machine delays some by tens of ms.
      expect(Math.max(...times)).toBeLessThan(500);
      expect((await created).status).toBe(201);
    } finally {
      holder.kill("SIGKILL");
    }
  });

  test("DELETE of a session leaves 0 processes of its sandbox (background and setsid jobs included)", async () => {
    const t = await startTestServer({ cost: { enabled: false } });
    servers.push(t);
    const id = await readySession(t);
    const marker = `${4000 + Math.floor(Math.random() * 1000)}.${process.pid}`;
    await runCommand(t, id, `sleep ${marker} & (sleep ${marker}; true) & setsid sleep ${marker} &`);
    const count = () =>
      spawnSync("pgrep", ["-f", `sleep ${marker}`], { encoding: "utf8" })
        .stdout.split("\n")
        .filter(Boolean).length;
    let deadline = Date.now() + 10_000;
    // `setsid` of a job forks, and its parent (`setsid sleep …`) lives a moment: wait for exactly three sleeps.
    while (count() !== 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(count()).toBe(3);
    expect((await t.request("DELETE", `/v1/sessions/${id}`)).status).toBeLessThan(300);
    deadline = Date.now() + 2000;
    while (count() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(count()).toBe(0);
  });

  test("an existing state dir of ours is tightened to 0700", async () => {
    const stateDir = join(dir.path, "loose-state");
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    const host = await AgentHost.open(
      parseHostConfig({ storage: { stateDir }, secrets: { enabled: false }, cost: { enabled: false } }),
      { logger: silentLogger },
    );
    await host.close();
    expect(modeOf(stateDir)).toBe(0o700);
  });

  test.runIf(isRoot)("a group/world-writable state dir owned by someone else is refused", async () => {
    const stateDir = join(dir.path, "foreign-state");
    mkdirSync(stateDir);
    chmodSync(stateDir, 0o777);
    chownSync(stateDir, 65534, 65534);
    const err = await AgentHost.open(
      parseHostConfig({ storage: { stateDir }, secrets: { enabled: false }, cost: { enabled: false } }),
      { logger: silentLogger },
    ).catch((e: unknown) => e);
    expect(isRuntimeError(err, "FAILED_PRECONDITION")).toBe(true);
    expect((err as Error).message).toContain(stateDir);
    expect((err as Error).message).toMatch(/writable by other users/);
    expect(existsSync(join(stateDir, "agent-host.db"))).toBe(false);
  });
});

/** Reads an event stream's raw text until `until` holds (or the time is up). */
async function readStream(url: string, token: string, until: (text: string) => boolean): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  let text = "";
  try {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    while (!until(text)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel().catch(() => undefined);
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return text;
}

describe("secrets typed into an action are never stored or streamed", () => {
  test("run `echo <secret>` and a write with the secret: not in tasks, SSE, the database, its WAL, or logs", async () => {
    const secret = `sk-live-${randomBytes(16).toString("hex")}`;
    const stateDir = join(dir.path, "secret-state");
    const logs: string[] = [];
    const capture = (level: string) => (message: string, fields?: LogFields) => {
      logs.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ""}`);
    };
    const logger: Logger = {
      debug: capture("debug"),
      info: capture("info"),
      warn: capture("warn"),
      error: capture("error"),
    };
    const t = await startTestServer({
      storage: { stateDir },
      secrets: { enabled: true, options: { providers: [{ type: "memory", values: { API_TOKEN: secret } }] } },
      logger,
    });
    servers.push(t);
    // Submitted at once, while the session may still be starting.
    const created = await t.request("POST", "/v1/sessions", {
      body: { id: "sec", labels: { note: secret } },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const echo = await t.request("POST", `/v1/sessions/${id}/actions`, {
      body: { action: "run", args: { command: `echo ${secret}`, blocking: true } },
    });
    expect(echo.status).toBe(202);
    expect(JSON.stringify(echo.body)).not.toContain(secret);
    const write = await t.request("POST", `/v1/sessions/${id}/actions`, {
      body: { action: "write", args: { path: "notes.txt", content: `token=${secret}\n` } },
    });
    expect(write.status).toBe(202);
    const check = await t.request("POST", `/v1/sessions/${id}/actions`, {
      body: { action: "run", args: { command: "cat notes.txt; echo env=$API_TOKEN", blocking: true } },
    });
    const ids = [echo.body.id, write.body.id, check.body.id] as string[];
    const done: Json[] = [];
    for (const taskId of ids) done.push((await t.request("GET", `/v1/tasks/${taskId}?waitMs=30000`)).body);
    expect(done.map((d) => d.status)).toEqual(["completed", "completed", "completed"]);
    // The action ran with the real value: the sandbox got the secret, the host shows it redacted.
    expect(done[0].action.args.command).not.toContain(secret);
    expect(done[0].action.args.command).toMatch(/^echo /);
    expect(done[1].action.args.content).toMatch(/^token=/);
    expect(done[2].observation.content).toContain("token=");
    expect(done[2].observation.content).toContain("env=");

    const everything = JSON.stringify([
      done,
      (await t.request("GET", `/v1/sessions/${id}/tasks`)).body,
      (await t.request("GET", `/v1/sessions/${id}`)).body,
      (await t.request("GET", "/v1/sessions")).body,
    ]);
    expect(everything).not.toContain(secret);

    const sse = await readStream(`${t.url}/v1/sessions/${id}/events?after=0`, t.token!, (text) =>
      ids.every((taskId) => new RegExp(`"id":"${taskId}"[^\\n]*"status":"completed"`).test(text)),
    );
    expect(sse).toContain(check.body.id);
    expect(sse).not.toContain(secret);

    const db = t.host.store.path;
    const needle = Buffer.from(secret);
    expect(readFileSync(db).includes(needle)).toBe(false);
    expect(existsSync(`${db}-wal`)).toBe(true);
    expect(readFileSync(`${db}-wal`).includes(needle)).toBe(false);
    expect((await t.request("DELETE", `/v1/sessions/${id}`)).body.status).toBe("closed");
    expect(readFileSync(`${db}-wal`).includes(needle)).toBe(false);
    // Whatever logs about a session (the host, the runtime, the plugins) goes through its secrets first.
    const probe = await t.request("POST", "/v1/sessions", { body: { id: "probe" } });
    expect(probe.status).toBe(201);
    t.host.logger.warn(`probe ${secret}`, { value: secret, nested: { list: [secret] } });
    expect(logs.some((l) => l.includes("probe"))).toBe(true);
    expect(logs.length).toBeGreaterThan(1);
    expect(logs.join("\n")).not.toContain(secret);
  });
});

describe("budgets refuse a session at once", () => {
  test("POST /v1/sessions over budget -> 402 with the budget's numbers; no session, nothing started", async () => {
    const t = await startTestServer({
      storage: { stateDir: join(dir.path, "budget-state") },
      cost: {
        enabled: true,
        options: {
          prices: { providers: { local: { cpuPerCoreSecondUsd: 0.001, memoryPerGiBSecondUsd: 0.001 } } },
          budgets: [{ name: "tiny", scope: "global", period: "daily", limitUsd: 0.5 }],
        },
      },
    });
    servers.push(t);
    const r = await t.request("POST", "/v1/sessions", { body: { id: "too-expensive" } });
    expect(r.status).toBe(402);
    expect(r.body.error.code).toBe("BUDGET_EXCEEDED");
    expect(r.body.error.details).toMatchObject({
      budget: "tiny",
      limitUsd: 0.5,
      spentUsd: 0,
      reservedUsd: 0,
      currency: "USD",
    });
    expect(r.body.error.details.requestedUsd).toBeGreaterThan(0.5);
    expect(r.body.error.message).toContain("tiny");
    expect(r.body.error.message).toMatch(/raise|lower|shorten/i);
    expect((await t.request("GET", "/v1/sessions/too-expensive")).status).toBe(404);
    expect((await t.request("GET", "/v1/sessions")).body.sessions).toEqual([]);
    expect(t.host.openSessionCount).toBe(0);
    const costs = await t.request("GET", "/v1/costs");
    expect(costs.body.budgets[0]).toMatchObject({ budget: "tiny", reservedUsd: 0, spentUsd: 0 });
    // The id is free: nothing half-made is left behind.
    const openLeases = (t.host.plugins.cost as unknown as { openLeases(): unknown[] }).openLeases();
    expect(openLeases).toEqual([]);
  });
});
