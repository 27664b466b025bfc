import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import {
  ActionExecutionClient,
  type BaseRuntime,
  cmdRun,
  fileRead,
  NDJSON_MEDIA_TYPE,
  type Redactor,
  redactionStream,
} from "../src/index.js";
import { ServerRuntime } from "../src/testing.js";
import { expectCode, type FakeServer, json, runObservation, startFakeServer } from "./fake-server.js";

const servers: FakeServer[] = [];
const clients: ActionExecutionClient[] = [];
const runtimes: BaseRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close();
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function setup() {
  const server = await startFakeServer();
  servers.push(server);
  const client = new ActionExecutionClient({ baseUrl: server.url, sessionApiKey: "k-stream" });
  clients.push(client);
  return { server, client };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Answers in the streaming form: each item is written as one line after its delay. */
async function streamLines(res: ServerResponse, items: { delayMs?: number; line: unknown }[]): Promise<void> {
  res.writeHead(200, { "content-type": `${NDJSON_MEDIA_TYPE}; charset=utf-8` });
  res.flushHeaders();
  for (const item of items) {
    if (item.delayMs) await sleep(item.delayMs);
    res.write(typeof item.line === "string" ? `${item.line}\n` : `${JSON.stringify(item.line)}\n`);
  }
  res.end();
}

/** The action-server's answer to `for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done`, streamed. */
const fiveLines = (res: ServerResponse) =>
  streamLines(res, [
    ...[1, 2, 3, 4, 5].map((i) => ({
      delayMs: i === 1 ? 0 : 100,
      line: { type: "output", content: `line${i}\n` },
    })),
    {
      delayMs: 100,
      line: { type: "observation", observation: runObservation("line1\nline2\nline3\nline4\nline5") },
    },
  ]);

describe("ActionExecutionClient.executeAction with onOutput", () => {
  it("asks for the streaming form and hands over each chunk as it arrives, then the observation", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => fiveLines(res);
    const chunks: { text: string; at: number }[] = [];
    const obs = await client.executeAction(cmdRun("for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done"), {
      onOutput: (text) => chunks.push({ text, at: performance.now() }),
    });
    const doneAt = performance.now();
    expect(server.requests[0]!.headers.accept).toBe(`${NDJSON_MEDIA_TYPE}, application/json`);
    expect(chunks.map((c) => c.text)).toEqual(["line1\n", "line2\n", "line3\n", "line4\n", "line5\n"]);
    expect(chunks[0]!.at).toBeLessThan(doneAt - 300);
    expect(obs.observation).toBe("run");
    expect(obs.content).toBe("line1\nline2\nline3\nline4\nline5");
  });

  it("without onOutput asks for plain JSON, as OpenHands' client does", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => json(res, 200, runObservation("plain"));
    await client.executeAction(cmdRun("echo plain"));
    expect(server.requests[0]!.headers.accept).toBe("application/json");
  });

  it("works with a server that ignores Accept and answers plain JSON (OpenHands' own): no chunks", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => json(res, 200, runObservation("whole"));
    const chunks: string[] = [];
    const obs = await client.executeAction(cmdRun("echo whole"), { onOutput: (t) => chunks.push(t) });
    expect(obs.content).toBe("whole");
    expect(chunks).toEqual([]);
  });

  it("maps an error line to the same error as the plain form's status, and a refusal before streaming", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) =>
      streamLines(res, [
        { line: { type: "output", content: "partial\n" } },
        { line: { type: "error", status: 500, detail: "Internal server error: boom" } },
      ]);
    const err = await expectCode(client.executeAction(cmdRun("x"), { onOutput: () => {} }), "INTERNAL");
    expect(err.message).toContain("Internal server error: boom");
    server.handler = (_req, _body, res) =>
      json(res, 422, { detail: "Invalid request parameters", errors: ["a: b"] });
    const bad = await expectCode(
      client.executeAction(cmdRun("y"), { onOutput: () => {} }),
      "INVALID_ARGUMENT",
    );
    expect(bad.message).toContain("a: b");
  });

  it("fails with DISCONNECTED when the stream ends without an observation or a line is not JSON", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => streamLines(res, [{ line: { type: "output", content: "a\n" } }]);
    const cut = await expectCode(client.executeAction(cmdRun("x"), { onOutput: () => {} }), "DISCONNECTED");
    expect(cut.message).toContain("ended its streamed answer before the observation");
    server.handler = (_req, _body, res) => streamLines(res, [{ line: "{not json" }]);
    const garbled = await expectCode(
      client.executeAction(cmdRun("y"), { onOutput: () => {} }),
      "DISCONNECTED",
    );
    expect(garbled.message).toContain("not JSON");
  });

  it("ignores unknown line types and survives a throwing listener", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) =>
      streamLines(res, [
        { line: { type: "progress", value: 3 } },
        { line: { type: "output", content: "one\n" } },
        { line: { type: "output", content: "two\n" } },
        { line: { type: "observation", observation: runObservation("one\ntwo") } },
      ]);
    let calls = 0;
    const obs = await client.executeAction(cmdRun("x"), {
      onOutput: () => {
        calls++;
        throw new Error("listener bug");
      },
    });
    expect(calls).toBe(2);
    expect(obs.content).toBe("one\ntwo");
  });

  it("keeps the action's deadline: a stream that stalls times out at timeout + grace", async () => {
    const server = await startFakeServer();
    servers.push(server);
    const client = new ActionExecutionClient({ baseUrl: server.url, httpGraceMs: 100 });
    clients.push(client);
    server.handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": NDJSON_MEDIA_TYPE });
      res.write(`${JSON.stringify({ type: "output", content: "then silence\n" })}\n`);
    };
    const chunks: string[] = [];
    await expectCode(
      client.executeAction(cmdRun("sleep 100", { timeoutMs: 200 }), { onOutput: (t) => chunks.push(t) }),
      "TIMEOUT",
    );
    expect(chunks).toEqual(["then silence\n"]);
  });
});

// ------------------------------------------------------------------ Runtime.run and redaction

const SECRET = "sk-live-9f8e7d6c5b4a3928";

/** A redactor that knows one value (and has no stream of its own: the line fallback is used). */
const lineRedactor: Redactor = {
  isEmpty: false,
  redact: (text) => text.split(SECRET).join("[redacted]"),
  redactDeep: <T>(value: T): T => JSON.parse(JSON.stringify(value).split(SECRET).join("[redacted]")) as T,
};

/** The same with a stream that holds back the value's length minus one (as @agent-runtime/secrets does). */
const streamingRedactor: Redactor = {
  ...lineRedactor,
  createStream() {
    let held = "";
    return {
      write(chunk) {
        const text = lineRedactor.redact(held + chunk);
        const keep = Math.min(text.length, SECRET.length - 1);
        held = text.slice(text.length - keep);
        return text.slice(0, text.length - keep);
      },
      flush() {
        const rest = lineRedactor.redact(held);
        held = "";
        return rest;
      },
    };
  },
};

async function runtimeOn(redactor: Redactor) {
  const server = await startFakeServer();
  servers.push(server);
  const runtime = new ServerRuntime({
    backend: "fake",
    sessionId: "s-stream",
    sandbox: { sandboxId: "fake-1", url: server.url, sessionApiKey: "k" },
    redactor,
  });
  runtimes.push(runtime);
  await runtime.connect();
  return { server, runtime };
}

/** Streams the secret in two chunks, 150 ms apart, split in its middle, then an observation holding it. */
const splitSecret = (res: ServerResponse) =>
  streamLines(res, [
    { line: { type: "output", content: `token=${SECRET.slice(0, 9)}` } },
    { delayMs: 150, line: { type: "output", content: `${SECRET.slice(9)} ok\nnext line\n` } },
    {
      delayMs: 50,
      line: { type: "observation", observation: runObservation(`token=${SECRET} ok\nnext line`) },
    },
  ]);

describe("Runtime.run with onOutput", () => {
  it("streams line by line to the caller before the observation (a redactor without a stream: whole lines)", async () => {
    const { server, runtime } = await runtimeOn(lineRedactor);
    server.handler = (req, _body, res) =>
      req.url === "/alive" ? json(res, 200, { status: "ok" }) : fiveLines(res);
    const chunks: { text: string; at: number }[] = [];
    const obs = await runtime.run(cmdRun("for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done"), {
      onOutput: (text) => chunks.push({ text, at: performance.now() }),
    });
    const doneAt = performance.now();
    expect(chunks.map((c) => c.text)).toEqual(["line1\n", "line2\n", "line3\n", "line4\n", "line5\n"]);
    expect(chunks[0]!.at).toBeLessThan(doneAt - 300);
    expect(obs.content).toBe("line1\nline2\nline3\nline4\nline5");
  });

  it("with a redactor's own stream, output trails by at most what it holds back (the longest secret)", async () => {
    const { server, runtime } = await runtimeOn(streamingRedactor);
    server.handler = (req, _body, res) =>
      req.url === "/alive" ? json(res, 200, { status: "ok" }) : fiveLines(res);
    const chunks: { text: string; at: number }[] = [];
    await runtime.run(cmdRun("for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done"), {
      onOutput: (text) => chunks.push({ text, at: performance.now() }),
    });
    const doneAt = performance.now();
    expect(chunks.map((c) => c.text).join("")).toBe("line1\nline2\nline3\nline4\nline5\n");
    // 23 characters held back: the first piece leaves once line4 arrived (24 characters), before the end.
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect("line1\nline2\nline3\nline4\n".startsWith(chunks[0]!.text)).toBe(true);
    expect(chunks[0]!.at).toBeLessThan(doneAt - 100);
  });

  for (const [name, redactor] of [
    ["the redactor's own stream", streamingRedactor],
    ["the line fallback", lineRedactor],
  ] as const) {
    it(`redacts a secret split across two chunks (${name})`, async () => {
      const { server, runtime } = await runtimeOn(redactor);
      server.handler = (req, _body, res) =>
        req.url === "/alive" ? json(res, 200, { status: "ok" }) : splitSecret(res);
      const chunks: string[] = [];
      const obs = await runtime.run(cmdRun("print-token"), { onOutput: (t) => chunks.push(t) });
      const all = chunks.join("");
      expect(all).toBe("token=[redacted] ok\nnext line\n");
      for (const c of chunks) {
        expect(c).not.toContain(SECRET.slice(0, 9));
        expect(c).not.toContain(SECRET.slice(9));
      }
      expect(obs.content).toBe("token=[redacted] ok\nnext line");
    });
  }

  it("passes chunks through unchanged when no secret is known; non-run actions give none", async () => {
    const { server, runtime } = await runtimeOn({ ...lineRedactor, isEmpty: true, redact: (t) => t });
    server.handler = (req, _body, res) => {
      if (req.url === "/alive") return json(res, 200, { status: "ok" });
      return streamLines(res, [
        { line: { type: "output", content: "no newline yet" } },
        { line: { type: "observation", observation: runObservation("no newline yet") } },
      ]);
    };
    const chunks: string[] = [];
    await runtime.run(cmdRun("printf 'no newline yet'"), { onOutput: (t) => chunks.push(t) });
    expect(chunks).toEqual(["no newline yet"]);
    server.handler = (req, _body, res) =>
      req.url === "/alive"
        ? json(res, 200, { status: "ok" })
        : streamLines(res, [
            {
              line: {
                type: "observation",
                observation: { observation: "read", content: "x", message: "", extras: { path: "/f" } },
              },
            },
          ]);
    const more: string[] = [];
    const read = await runtime.run(fileRead("/f"), { onOutput: (t) => more.push(t) });
    expect(read.observation).toBe("read");
    expect(more).toEqual([]);
  });
});

describe("redactionStream", () => {
  it("holds a partial line until its end (fallback), and bounds an endless line", () => {
    const s = redactionStream(lineRedactor);
    expect(s.write("abc")).toBe("");
    expect(s.write(`de ${SECRET.slice(0, 5)}`)).toBe("");
    expect(s.write(`${SECRET.slice(5)}\nrest`)).toBe("abcde [redacted]\n");
    expect(s.flush()).toBe("rest");
    const long = redactionStream(lineRedactor);
    const out = long.write("x".repeat(70_000));
    expect(out.length).toBe(70_000 - 4096);
    expect(long.flush().length).toBe(4096);
  });
});
