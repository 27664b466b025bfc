import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
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

/** The real bundle (built by test/global-setup.ts) running as a child process on 127.0.0.1. */
export interface BinServer {
  proc: ChildProcess;
  url: string;
  key: string;
  /** The child's resident set size in bytes, from /proc. */
  rssBytes(): number;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts `binPath` with a working dir under `root`; `env` adds to a minimal environment. */
export async function startBinServer(
  binPath: string,
  root: string,
  env: Record<string, string> = {},
): Promise<BinServer> {
  const key = "bin-attack-key";
  mkdirSync(join(root, "home"), { recursive: true });
  const proc = spawn(
    process.execPath,
    [binPath, "0", "--working-dir", join(root, "work"), "--host", "127.0.0.1"],
    {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: join(root, "home"),
        SESSION_API_KEY: key,
        NO_CHANGE_TIMEOUT_SECONDS: "1",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<void>((res) => proc.once("exit", () => res()));
  const output = await listeningLine(proc);
  const { port } = output.line as { port: number };
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    key,
    rssBytes() {
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024;
    },
    stderr: output.stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * Collects a spawned server's stdout and stderr and waits (15 s at most) for its first stdout line, the
 * listening line, parsed. Throws with the server's stderr when it exits first or never prints one.
 */
export async function listeningLine(
  proc: ChildProcess,
): Promise<{ line: unknown; stdout: () => string; stderr: () => string }> {
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 15_000;
  while (!out.includes("\n")) {
    if (proc.exitCode !== null) throw new Error(`server exited early (${proc.exitCode}): ${err}`);
    if (Date.now() > deadline) throw new Error(`no listening line: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { line: JSON.parse(out.split("\n")[0]!), stdout: () => out, stderr: () => err };
}
