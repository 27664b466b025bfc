import { PassThrough, Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ActionExecutionClient, isRuntimeError, type RuntimeError } from "../src/index.js";
import { type FakeServer, json, startFakeServer } from "./fake-server.js";

const servers: FakeServer[] = [];
const clients: ActionExecutionClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function setup() {
  const server = await startFakeServer();
  servers.push(server);
  const client = new ActionExecutionClient({ baseUrl: server.url, sessionApiKey: "k-123" });
  clients.push(client);
  return { server, client };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isRuntimeError(err), String(err)).toBe(true);
  return (err as RuntimeError).code;
}

/** A sink that keeps what it gets (the tests' bodies are small). */
function collector(): Writable & { data: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  }) as Writable & { data: () => Buffer };
  sink.data = () => Buffer.concat(chunks);
  return sink;
}

describe("ActionExecutionClient.downloadFilesTo", () => {
  it("pipes the body into the sink, sends the key and the path, ends the sink", async () => {
    const { server, client } = await setup();
    const body = Buffer.alloc(3 << 20, 7);
    server.handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/zip" });
      // Several writes: the sink must see every byte in order.
      for (let i = 0; i < 3; i++) res.write(body.subarray(i << 20, (i + 1) << 20));
      res.end();
    };
    const sink = collector();
    const finished = new Promise((resolve) => sink.on("finish", resolve));
    expect(await client.downloadFilesTo("/w/x y", sink)).toBe(body.length);
    await finished;
    expect(Buffer.compare(sink.data(), body)).toBe(0);
    expect(server.requests[0]?.path).toBe("/download_files?path=%2Fw%2Fx+y");
    expect(server.requests[0]?.headers["x-session-api-key"]).toBe("k-123");
  });

  it("maps a 404 to NOT_FOUND and destroys the sink without an unhandled error", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => json(res, 404, { detail: "File not found: /nope" });
    const sink = collector();
    expect(await codeOf(client.downloadFilesTo("/nope", sink))).toBe("NOT_FOUND");
    expect(sink.destroyed).toBe(true);
    expect(sink.data().length).toBe(0);
  });

  it("a connection cut mid-body is DISCONNECTED, not a complete download", async () => {
    const { server, client } = await setup();
    server.handler = (req, _body, res) => {
      res.writeHead(200, { "content-type": "application/zip" });
      res.write(Buffer.alloc(64 * 1024));
      setTimeout(() => req.socket.destroy(), 20);
    };
    const sink = collector();
    expect(await codeOf(client.downloadFilesTo("/big", sink))).toBe("DISCONNECTED");
    expect(sink.destroyed).toBe(true);
  });

  it("no byte for idleTimeoutMs is TIMEOUT; a slow but steady body is not", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/zip" });
      res.write("a");
    };
    expect(await codeOf(client.downloadFilesTo("/stuck", collector(), { idleTimeoutMs: 200 }))).toBe(
      "TIMEOUT",
    );
    server.handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/zip" });
      let n = 0;
      const t = setInterval(() => {
        res.write("b");
        if (++n === 6) {
          clearInterval(t);
          res.end();
        }
      }, 100);
    };
    // 600 ms in all, never 200 ms without a byte.
    expect(await client.downloadFilesTo("/slow", collector(), { idleTimeoutMs: 200 })).toBe(6);
  });

  it("a failing sink rejects with INTERNAL and stops the request", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/zip" });
      res.write(Buffer.alloc(1 << 20));
    };
    const sink = new Writable({
      write(_chunk, _e, cb) {
        cb(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }));
      },
    });
    const err = await client.downloadFilesTo("/x", sink).catch((e: unknown) => e);
    expect((err as RuntimeError).code).toBe("INTERNAL");
    expect((err as Error).message).toContain("no space left");
  });

  it("an abort signal cancels the download", async () => {
    const { server, client } = await setup();
    server.handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/zip" });
      res.write("x");
    };
    const ac = new AbortController();
    const sink = new PassThrough();
    sink.resume();
    setTimeout(() => ac.abort(), 50);
    expect(await codeOf(client.downloadFilesTo("/x", sink, { signal: ac.signal }))).toBe("CANCELLED");
    expect(sink.destroyed).toBe(true);
  });
});
