import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ActionExecutionClient, cmdRun } from "../src/index.js";
import { expectCode, type FakeServer, json, runObservation, startFakeServer } from "./fake-server.js";

const servers: FakeServer[] = [];
const clients: ActionExecutionClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function setup(opts: Partial<ConstructorParameters<typeof ActionExecutionClient>[0]> = {}) {
  const server = await startFakeServer();
  servers.push(server);
  const client = new ActionExecutionClient({
    baseUrl: server.url,
    sessionApiKey: "k-123",
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...opts,
  });
  clients.push(client);
  return { server, client };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("ActionExecutionClient against a real HTTP server", () => {
  it("sends the session key and the action in the wire envelope, with a default timeout", async () => {
    const { server, client } = await setup();
    server.handler = (_req, body, res) =>
      json(res, 200, runObservation(JSON.parse(body).action.args.command));
    const obs = await client.executeAction(cmdRun("echo hi"));
    expect(obs.content).toBe("echo hi");
    const req = server.requests[0]!;
    expect(req.path).toBe("/execute_action");
    expect(req.headers["x-session-api-key"]).toBe("k-123");
    const sent = JSON.parse(req.body);
    expect(sent.action.action).toBe("run");
    expect(sent.action.timeout).toBe(120);
    expect(JSON.stringify(client)).not.toContain("k-123");
  });

  it("sends a typed action as given (no second parse, the caller's object untouched) and parses the observation", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => json(res, 200, runObservation("done"));
    const action = cmdRun("echo typed");
    const before = JSON.stringify(action);
    const obs = await client.executeAction(action);
    // The observation is parsed where it enters the host: defaults are filled in.
    expect(obs.observation).toBe("run");
    expect(JSON.stringify(action)).toBe(before);
    expect(action.timeout).toBeUndefined();
    const sent = JSON.parse(server.requests[0]!.body).action;
    expect(sent).toEqual({ ...JSON.parse(before), timeout: 120 });
  });

  it("leaves validation of what it sends to the server: its 400 becomes INVALID_ARGUMENT, the observation's issues are named", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) =>
      json(res, 400, { detail: "Invalid action", errors: ["action.args.command: expected string"] });
    const malformed = { ...cmdRun("x"), args: { command: 5 } } as unknown as ReturnType<typeof cmdRun>;
    const err = await expectCode(client.executeAction(malformed), "INVALID_ARGUMENT");
    expect(err.message).toContain("action.args.command: expected string");
    server.handler = (_req, _body, res) => json(res, 200, { observation: "run", content: 7, extras: {} });
    const bad = await expectCode(client.executeAction(cmdRun("y")), "INVALID_ARGUMENT");
    expect(bad.message).toMatch(/observation\.content:/);
  });

  it("runs one action at a time, in call order", async () => {
    const { server, client } = await setup();
    let inFlight = 0;
    let maxInFlight = 0;
    server.handler = (_req, body, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const cmd = JSON.parse(body).action.args.command as string;
      setTimeout(
        () => {
          inFlight--;
          json(res, 200, runObservation(cmd));
        },
        cmd === "first" ? 80 : 5,
      );
    };
    const results = await Promise.all(
      ["first", "second", "third", "fourth"].map((c) => client.executeAction(cmdRun(c))),
    );
    expect(results.map((r) => r.content)).toEqual(["first", "second", "third", "fourth"]);
    expect(server.requests.map((r) => JSON.parse(r.body).action.args.command)).toEqual([
      "first",
      "second",
      "third",
      "fourth",
    ]);
    expect(maxInFlight).toBe(1);
  });

  it("a failed action does not block the queue", async () => {
    const { server, client } = await setup();
    server.handler = (_req, body, res) => {
      const cmd = JSON.parse(body).action.args.command as string;
      if (cmd === "bad") json(res, 500, { detail: "Internal server error: boom" });
      else json(res, 200, runObservation(cmd));
    };
    const [a, b] = await Promise.allSettled([
      client.executeAction(cmdRun("bad")),
      client.executeAction(cmdRun("good")),
    ]);
    expect(a.status).toBe("rejected");
    expect((a as PromiseRejectedResult).reason.message).toContain("boom");
    expect(b.status === "fulfilled" && b.value.content).toBe("good");
  });

  it("times out at the action timeout plus the grace period", async () => {
    const { server, client } = await setup({ httpGraceMs: 100 });
    server.handler = () => {}; // never answers
    const t0 = Date.now();
    const err = await expectCode(client.executeAction(cmdRun("sleep 100", { timeoutMs: 200 })), "TIMEOUT");
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(3000);
    expect(err.message).toContain("timeoutMs");
  });

  it("retries 429 with back-off, then succeeds", async () => {
    const { server, client } = await setup();
    let n = 0;
    server.handler = (_req, _body, res) =>
      ++n < 3 ? json(res, 429, { detail: "slow down" }) : json(res, 200, ["a/", "b"]);
    expect(await client.listFiles()).toEqual(["a/", "b"]);
    expect(server.requests).toHaveLength(3);
  });

  it("gives up on 429 after the bounded attempts with RATE_LIMITED", async () => {
    const { server, client } = await setup({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    server.handler = (_req, _body, res) => json(res, 429, { detail: "slow down" });
    await expectCode(client.listFiles(), "RATE_LIMITED");
    expect(server.requests).toHaveLength(2);
  });

  it("retries protocol errors (a garbage HTTP reply) on idempotent calls", async () => {
    const { server, client } = await setup();
    let n = 0;
    server.handler = (req, _body, res) => {
      if (++n === 1) {
        req.socket.end("NOT-HTTP garbage\r\n\r\n");
        return;
      }
      json(res, 200, { token: "tok" });
    };
    expect(await client.vscodeConnectionToken()).toBe("tok");
    expect(n).toBe(2);
  });

  it("maps 404/502/504 after readiness to DISCONNECTED, 403 to UNAUTHORIZED, 422 to INVALID_ARGUMENT", async () => {
    const { server, client } = await setup();
    await client.waitUntilAlive({ deadlineMs: 2000 });
    for (const status of [404, 502, 504]) {
      server.handler = (_req, _body, res) => json(res, status, { detail: "gone" });
      await expectCode(client.executeAction(cmdRun("x")), "DISCONNECTED");
    }
    server.handler = (_req, _body, res) => json(res, 403, { detail: "Invalid API Key" });
    const e = await expectCode(client.executeAction(cmdRun("x")), "UNAUTHORIZED");
    expect(e.message).toContain("Invalid API Key");
    expect(e.message).not.toContain("k-123");
    server.handler = (_req, _body, res) =>
      json(res, 422, { detail: "Invalid request parameters", errors: "action.args.command: required" });
    const e2 = await expectCode(client.executeAction(cmdRun("x")), "INVALID_ARGUMENT");
    expect(e2.message).toContain("action.args.command");
  });

  it("maps a refused connection after readiness to DISCONNECTED", async () => {
    const { server, client } = await setup();
    await client.waitUntilAlive({ deadlineMs: 2000 });
    await server.close();
    servers.splice(0);
    await expectCode(client.executeAction(cmdRun("x")), "DISCONNECTED");
  });

  it("waits through refused connections, 503 and 'not initialized' until ok", async () => {
    const port = await freePort();
    const client = new ActionExecutionClient({ baseUrl: `http://127.0.0.1:${port}` });
    clients.push(client);
    setTimeout(async () => {
      const server = await startFakeServer(port);
      servers.push(server);
      let n = 0;
      server.handler = (_req, _body, res) => {
        n++;
        if (n === 1) json(res, 503, { detail: "starting" });
        else if (n === 2) json(res, 200, { status: "not initialized" });
        else json(res, 200, { status: "ok" });
      };
    }, 150);
    await client.waitUntilAlive({ deadlineMs: 5000, intervalMs: 10 });
    expect(client.ready).toBe(true);
    expect(servers[0]!.requests.length).toBeGreaterThanOrEqual(3);
  });

  it("fails readiness with TIMEOUT naming the last reason, and with DISCONNECTED when the sandbox died", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => json(res, 200, { status: "not initialized" });
    const e = await expectCode(client.waitUntilAlive({ deadlineMs: 200, intervalMs: 10 }), "TIMEOUT");
    expect(e.message).toContain('status "not initialized"');
    await expectCode(
      client.waitUntilAlive({ deadlineMs: 5000, isDead: () => "exit code 1" }),
      "DISCONNECTED",
    );
  });

  it("closes idle keep-alive sockets after idleSocketTimeoutMs (an open tunnel connection counts as activity on Modal)", async () => {
    const { server, client } = await setup({ idleSocketTimeoutMs: 50 });
    const sockets = new Set<import("node:net").Socket>();
    server.handler = (req, _body, res) => {
      sockets.add(req.socket);
      json(res, 200, ["x"]);
    };
    await client.listFiles();
    await client.listFiles();
    expect(sockets.size).toBe(1);
    const [socket] = [...sockets];
    expect(socket!.destroyed).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(socket!.destroyed || socket!.readableEnded).toBe(true);
    expect(await client.listFiles()).toEqual(["x"]);
  });

  it("rejects an invalid base URL clearly", () => {
    expect(() => new ActionExecutionClient({ baseUrl: "not a url" })).toThrow(/baseUrl: not a URL/);
    expect(() => new ActionExecutionClient({ baseUrl: "ftp://x" })).toThrow(/expected http/);
  });
});
