import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CmdOutputObservation, Observation } from "@agent-runtime/runtime-core";
import { type ActionServerHandle, type ActionServerOptions, startActionServer } from "../src/index.js";

/** A server started in-process on 127.0.0.1 with a private temp dir (working dir + HOME). */
export interface TestServer {
  server: ActionServerHandle;
  /** Root temp dir (removed by stop). */
  root: string;
  /** The server's working directory. */
  workDir: string;
  key: string | undefined;
  stop(): Promise<void>;
}

export async function startTestServer(options: Partial<ActionServerOptions> = {}): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), "ar-as-test-"));
  const workDir = join(root, "work");
  const home = join(root, "home");
  mkdirSync(home);
  const server = await startActionServer({
    workingDir: workDir,
    host: "127.0.0.1",
    port: 0,
    noChangeTimeoutMs: 1000,
    shellEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, LANG: "C.UTF-8" },
    ...options,
  });
  return {
    server,
    root,
    workDir,
    key: options.sessionApiKey,
    async stop() {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** One HTTP call; returns status and parsed JSON (or raw text when not JSON). */
export async function call(
  t: { server: { url: string }; key?: string | undefined },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown; text: string; headers: Headers }> {
  const res = await fetch(t.server.url + path, {
    method,
    headers: {
      ...(body !== undefined && typeof body !== "string" ? { "content-type": "application/json" } : {}),
      ...(t.key ? { "x-session-api-key": t.key } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** POSTs an action and returns the observation (throws on non-200). */
export async function act(t: TestServer, action: Record<string, unknown>): Promise<Observation> {
  const r = await call(t, "POST", "/execute_action", { action });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text}`);
  return r.json as Observation;
}

/** Runs a command (`timeout` in seconds; wire defaults otherwise). */
export async function run(
  t: TestServer,
  command: string,
  args: {
    timeout?: number;
    blocking?: boolean;
    is_input?: boolean;
    is_static?: boolean;
    cwd?: string;
    hidden?: boolean;
  } = {},
): Promise<CmdOutputObservation> {
  const { timeout, ...rest } = args;
  const obs = await act(t, {
    action: "run",
    args: { command, ...rest },
    ...(timeout !== undefined ? { timeout } : {}),
  });
  return obs as CmdOutputObservation;
}
