import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { act, call, run, startTestServer, type TestServer } from "./helpers.js";

const KEY = "test-session-key-123";
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ sessionApiKey: KEY });
});
afterAll(async () => {
  await t.stop();
});

const anonymous = () => ({ server: t.server, key: undefined });

describe("auth", () => {
  it("leaves /alive and /server_info open", async () => {
    expect(await call(anonymous(), "GET", "/alive")).toMatchObject({ status: 200, json: { status: "ok" } });
    const info = await call(anonymous(), "GET", "/server_info");
    expect(info.status).toBe(200);
    expect(info.json).toMatchObject({
      uptime: expect.any(Number),
      idle_time: expect.any(Number),
      resources: {
        cpu_percent: expect.any(Number),
        memory: { rss: expect.any(Number), vms: expect.any(Number), percent: expect.any(Number) },
        disk: {
          total: expect.any(Number),
          used: expect.any(Number),
          free: expect.any(Number),
          percent: expect.any(Number),
        },
        io: { read_bytes: expect.any(Number), write_bytes: expect.any(Number) },
      },
    });
  });

  it("answers 403 Invalid API Key without or with a wrong key, even for unknown paths", async () => {
    for (const [path, key] of [
      ["/execute_action", undefined],
      ["/execute_action", "wrong"],
      ["/list_files", `${KEY}x`],
      ["/no/such/path", undefined],
    ] as const) {
      const r = await call({ server: t.server, key }, "POST", path, {});
      expect(r.status, path).toBe(403);
      expect(r.json).toEqual({ detail: "Invalid API Key" });
    }
  });

  it("accepts the right key; unknown paths are then 404 and wrong methods 405", async () => {
    expect((await call(t, "GET", "/vscode/connection_token")).json).toEqual({ token: null });
    expect(await call(t, "GET", "/nope")).toMatchObject({ status: 404, json: { detail: "Not Found" } });
    expect(await call(t, "GET", "/execute_action")).toMatchObject({
      status: 405,
      json: { detail: "Method Not Allowed" },
    });
  });
});

describe("execute_action: bad input", () => {
  it("malformed JSON is 422 naming the body", async () => {
    const r = await call(t, "POST", "/execute_action", "{not json", { "content-type": "application/json" });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({
      detail: "Invalid request parameters",
      errors: [expect.stringMatching(/^body: not valid JSON/)],
    });
  });

  it("a missing action, an unknown type or a bad field is 422 naming the field", async () => {
    expect((await call(t, "POST", "/execute_action", { timeout: 3 })).json).toEqual({
      detail: "Invalid request parameters",
      errors: ["action: required"],
    });
    const unknown = await call(t, "POST", "/execute_action", { action: { action: "teleport", args: {} } });
    expect(unknown.status).toBe(422);
    expect((unknown.json as { errors: string[] }).errors[0]).toMatch(
      /^action\.action: unknown action type "teleport"; expected one of run/,
    );
    const bad = await call(t, "POST", "/execute_action", { action: { action: "run", args: { command: 5 } } });
    expect(bad.status).toBe(422);
    expect((bad.json as { errors: string[] }).errors).toEqual([
      expect.stringMatching(/^action\.args\.command: /),
    ]);
    const observation = await call(t, "POST", "/execute_action", {
      action: { observation: "run", content: "", extras: {} },
    });
    expect(observation.status).toBe(422);
  });

  it("accepts the full event_to_dict form the reference client sends", async () => {
    const obs = await act(t, {
      id: 12,
      source: "agent",
      message: "Running command: echo full",
      action: "run",
      args: {
        command: "echo full",
        is_input: false,
        thought: "",
        blocking: false,
        is_static: false,
        cwd: null,
        hidden: false,
        confirmation_state: "confirmed",
        security_risk: -1,
      },
      timeout: 120.0,
    });
    expect(obs.content).toBe("full");
  });

  it("call_tool_mcp is refused as an observation: it runs on the host", async () => {
    const obs = await act(t, { action: "call_tool_mcp", args: { name: "tool", arguments: {} } });
    expect(obs.observation).toBe("error");
    expect(obs.content).toContain("executed by the host");
  });
});

describe("update_mcp_server", () => {
  it("validates and stores the configs, saying clearly there is no proxy", async () => {
    const ok = await call(t, "POST", "/update_mcp_server", [
      { name: "fs", command: "npx", args: ["-y", "fs"], env: {} },
    ]);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      detail: "MCP server updated successfully",
      router_error_log: expect.stringContaining("no MCP proxy"),
    });
    expect((await call(t, "POST", "/update_mcp_server", { name: "x" })).status).toBe(400);
    const bad = await call(t, "POST", "/update_mcp_server", [{ name: 1 }]);
    expect(bad.status).toBe(400);
    expect((bad.json as { detail: string }).detail).toContain("[0].name: expected a string");
  });
});

describe("concurrency", () => {
  it("/alive keeps answering while a long command runs; actions run one at a time in arrival order", async () => {
    const long = run(t, "sleep 3; echo long-done", { timeout: 10, blocking: true });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    expect((await call(anonymous(), "GET", "/alive")).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2000);
    const second = run(t, "echo second");
    const third = act(t, { action: "write", args: { path: "order.txt", content: "third" } });
    const results = await Promise.all([long, second, third]);
    expect(results[0].content).toBe("long-done");
    // Queued behind the long command, not refused as "previous command still running".
    expect(results[1].content).toBe("second");
    expect(results[1].extras.metadata.exit_code).toBe(0);
    expect(results[2].observation).toBe("write");
  });

  it("idle_time counts from the last action", async () => {
    await run(t, "true");
    await new Promise((r) => setTimeout(r, 300));
    const info = (await call(t, "GET", "/server_info")).json as { idle_time: number };
    expect(info.idle_time).toBeGreaterThanOrEqual(0.25);
    expect(info.idle_time).toBeLessThan(5);
  });
});
