import { createServer, type Server } from "node:http";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpCall, httpStreamTo, TransportError } from "../src/client/http.js";

// node:http against a real server on 127.0.0.1. A request destroyed before it connected emits "socket hang up";
// without a listener that is an uncaught exception, which vitest reports as an error of the whole run (it took
// agent-host's suite down once, from a session deleted while its readiness probe was being sent).

let server: Server;
let url: URL;
beforeAll(async () => {
  server = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const sink = () =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

/** Runs `requests` 20 times; each must reject with TransportError "aborted", and nothing may be thrown elsewhere. */
async function abortedTwentyTimes(request: () => Promise<unknown>): Promise<void> {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on("uncaughtException", onUncaught);
  try {
    for (let i = 0; i < 20; i++) {
      const err = await request().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).kind).toBe("aborted");
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(uncaught).toEqual([]);
  } finally {
    process.off("uncaughtException", onUncaught);
  }
}

describe("requests whose signal was aborted before they were sent", () => {
  it("httpCall rejects with TransportError 'aborted' and nothing is thrown elsewhere", async () => {
    await abortedTwentyTimes(() =>
      httpCall({ method: "GET", url, timeoutMs: 5000, signal: AbortSignal.abort() }),
    );
  });

  it("httpStreamTo rejects the same way", async () => {
    await abortedTwentyTimes(() =>
      httpStreamTo({ method: "GET", url, timeoutMs: 5000, signal: AbortSignal.abort(), sink: sink() }),
    );
  });

  it("an unaborted call still answers", async () => {
    const res = await httpCall({ method: "GET", url, timeoutMs: 5000 });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("ok");
  });
});
