import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { expect } from "vitest";
import { isRuntimeError, type RuntimeError } from "../src/index.js";

/** A scriptable real HTTP server on 127.0.0.1 for client tests (not a mock of fetch). */
export interface FakeServer {
  url: string;
  port: number;
  requests: { method: string; path: string; headers: IncomingMessage["headers"]; body: string; at: number }[];
  handler: (req: IncomingMessage, body: string, res: ServerResponse) => void | Promise<void>;
  close(): Promise<void>;
}

export async function startFakeServer(port = 0): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  const fake: FakeServer = {
    url: "",
    port: 0,
    requests: [],
    handler: (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      fake.requests.push({
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body,
        at: Date.now(),
      });
      void fake.handler(req, body, res);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  return fake;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

export const runObservation = (content: string) => ({
  observation: "run",
  content,
  message: "ok",
  success: true,
  extras: {
    command: content,
    hidden: false,
    metadata: {
      exit_code: 0,
      pid: -1,
      username: "u",
      hostname: "h",
      working_dir: "/w",
      py_interpreter_path: "",
      prefix: "",
      suffix: "",
    },
  },
});

/** Expects `p` to reject with a RuntimeError of `code`, and returns it. */
export async function expectCode(p: Promise<unknown>, code: RuntimeError["code"]): Promise<RuntimeError> {
  try {
    await p;
  } catch (err) {
    expect(isRuntimeError(err), String(err)).toBe(true);
    expect((err as RuntimeError).code, (err as Error).message).toBe(code);
    return err as RuntimeError;
  }
  throw new Error(`expected ${code}`);
}
