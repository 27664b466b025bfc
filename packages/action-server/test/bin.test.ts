import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { actionServerBinPath } from "../src/index.js";
import { readProc } from "../src/shell/process-tree.js";
import { listeningLine } from "./helpers.js";

const KEY = "bin-test-secret-key-9f3a";
/** Built by test/global-setup.ts with the same config as dist/bin.cjs. */
const BIN = inject("binPath");
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "ar-as-bin-"));
  mkdirSync(join(root, "home"));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

interface Running {
  proc: ChildProcess;
  port: number;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(root, "home"),
    SESSION_API_KEY: KEY,
    NO_CHANGE_TIMEOUT_SECONDS: "1",
    ACTION_SERVER_LOG_LEVEL: "debug",
    ...extra,
  };
}

async function startBin(args: string[], extraEnv: Record<string, string> = {}, bin = BIN): Promise<Running> {
  const proc = spawn(process.execPath, [bin, ...args], {
    env: env(extraEnv),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((res) => proc.on("exit", (code) => res(code)));
  const { line, stdout, stderr } = await listeningLine(proc);
  const { port } = line as { port: number };
  expect(line).toEqual({ event: "listening", port: expect.any(Number), pid: proc.pid });
  return { proc, port, url: `http://127.0.0.1:${port}`, stdout, stderr, exited };
}

async function post(url: string, path: string, body: unknown, key: string | undefined = KEY) {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { "x-session-api-key": key } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("the bundled bin (dist/bin.cjs)", () => {
  let s: Running;
  beforeAll(async () => {
    s = await startBin(["0", "--working-dir", join(root, "work"), "--host", "127.0.0.1"]);
  });
  afterAll(async () => {
    if (s.proc.exitCode === null) s.proc.kill("SIGKILL");
  });

  it("prints exactly one listening line, then /alive answers ok", async () => {
    const alive = await fetch(`${s.url}/alive`);
    expect(await alive.json()).toEqual({ status: "ok" });
    expect(s.stdout().trim().split("\n")).toHaveLength(1);
  });

  it("enforces SESSION_API_KEY and applies NO_CHANGE_TIMEOUT_SECONDS", async () => {
    expect(
      (
        await post(
          s.url,
          "/execute_action",
          { action: { action: "run", args: { command: "echo x" } } },
          "wrong",
        )
      ).status,
    ).toBe(403);
    const obs = await post(s.url, "/execute_action", {
      action: { action: "run", args: { command: "echo a; sleep 3" } },
    });
    expect(obs.status).toBe(200);
    expect(JSON.stringify(obs.json)).toContain("no new output after 1 seconds");
    await post(s.url, "/execute_action", {
      action: { action: "run", args: { command: "C-c", is_input: true }, timeout: 5 },
    });
  });

  it("never logs the session key", async () => {
    await post(s.url, "/execute_action", {
      action: { action: "run", args: { command: "echo $SESSION_API_KEY" } },
    });
    await post(s.url, "/list_files", {}, `${KEY}-wrong`);
    expect(s.stderr()).toContain("action server listening");
    expect(s.stderr()).not.toContain(KEY);
    expect(s.stdout()).not.toContain(KEY);
  });

  it("SIGTERM stops it promptly with exit code 0 and kills the shell's process groups", async () => {
    const bg = await post(s.url, "/execute_action", {
      action: { action: "run", args: { command: "sleep 300 & echo $!" } },
    });
    // The content is the pid, then the job notice a terminal shows (`[1] <pid>`).
    const bgPid = Number((bg.json as { content: string }).content.split("\n")[0]);
    expect(readProc(bgPid)).toBeDefined();
    const fg = await post(s.url, "/execute_action", {
      action: { action: "run", args: { command: "sleep 301", blocking: true }, timeout: 0.3 },
    });
    expect(JSON.stringify(fg.json)).toContain("timed out");
    const started = Date.now();
    s.proc.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    // SIGKILL was sent before the exit; the kernel may take a moment to tear `sleep 300` down on a loaded
    // machine, so poll (a job the server left alive would still run at the deadline).
    const gone = () => {
      const p = readProc(bgPid);
      return p === undefined || p.state === "Z";
    };
    const deadline = Date.now() + 10_000;
    while (!gone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(readProc(bgPid)?.state ?? "gone").toMatch(/^(gone|Z)$/);
  });
});

describe("bin contract", () => {
  it("actionServerBinPath() points at dist/bin.cjs of this package", () => {
    expect(actionServerBinPath()).toBe(join(import.meta.dirname, "..", "dist", "bin.cjs"));
  });

  it("runs from a copy outside the repository (every dependency is bundled)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-as-standalone-"));
    try {
      const copy = join(dir, "server.cjs");
      copyFileSync(BIN, copy);
      const s = await startBin(
        ["0", "--working-dir", join(dir, "w"), "--host=127.0.0.1", "--username", "agent"],
        {},
        copy,
      );
      const obs = await post(s.url, "/execute_action", {
        action: { action: "run", args: { command: "echo standalone" } },
      });
      expect(obs.json).toMatchObject({ content: "standalone", extras: { metadata: { username: "agent" } } });
      s.proc.kill("SIGINT");
      expect(await s.exited).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits 2 with the usage on bad arguments", async () => {
    const proc = spawn(process.execPath, [BIN, "notaport", "--bogus"], {
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    proc.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => proc.on("exit", res));
    expect(code).toBe(2);
    expect(err).toContain('<port>: expected an integer 0-65535, got "notaport"');
    expect(err).toContain("--bogus: unknown option");
    expect(err).toContain("--working-dir: required");
    expect(err).toContain("Usage: agent-runtime-action-server <port> --working-dir <dir>");
  });

  it("exits 1 with a clear message when the shell cannot start", async () => {
    const proc = spawn(
      process.execPath,
      [BIN, "0", "--working-dir", join(root, "w2"), "--host", "127.0.0.1"],
      {
        env: env({ ACTION_SERVER_SHELL: "/nonexistent/bash" }),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    proc.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => proc.on("exit", res));
    expect(code).toBe(1);
    expect(err).toContain('Could not start the shell "/nonexistent/bash"');
  });
});

describe("the bundled bin with --socket", () => {
  it("serves the protocol over a unix socket and reports it in the listening line", async () => {
    const { request } = await import("node:http");
    const socket = join(root, "server.sock");
    const proc = spawn(
      process.execPath,
      [BIN, "0", "--working-dir", join(root, "sock-work"), "--socket", socket],
      {
        env: env(),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      let out = "";
      proc.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
      });
      const deadline = Date.now() + 15_000;
      while (!out.includes("\n") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(JSON.parse(out.split("\n")[0]!)).toEqual({ event: "listening", port: 0, socket, pid: proc.pid });
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(
          {
            socketPath: socket,
            path: "/execute_action",
            method: "POST",
            headers: { "content-type": "application/json", "x-session-api-key": KEY },
          },
          (res) => {
            let text = "";
            res.on("data", (c: Buffer) => {
              text += c.toString();
            });
            res.on("end", () => resolve(text));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ action: { action: "run", args: { command: "echo over-socket" } } }));
      });
      expect(JSON.parse(body).content).toBe("over-socket");
    } finally {
      proc.kill("SIGTERM");
    }
  });
});

describe("the bundled bin with --env-from-stdin", () => {
  /** Starts the bin with `--env-from-stdin`, no SESSION_API_KEY in its environment, and `input` on its stdin. */
  function spawnWithStdin(input: string) {
    const { SESSION_API_KEY: _key, ...rest } = env();
    const proc = spawn(
      process.execPath,
      [BIN, "0", "--working-dir", join(root, "stdin-work"), "--host", "127.0.0.1", "--env-from-stdin"],
      { env: rest, stdio: ["pipe", "pipe", "pipe"] },
    );
    proc.stdin!.end(input);
    return proc;
  }

  it("takes the session key and secrets from stdin: auth is on, shells see the secrets, logs see neither", async () => {
    const stdinKey = "stdin-key-5b1e7c";
    const secret = "stdin-secret-value-93d2";
    const proc = spawnWithStdin(JSON.stringify({ SESSION_API_KEY: stdinKey, STDIN_SECRET: secret }));
    try {
      const { line, stdout, stderr } = await listeningLine(proc);
      const url = `http://127.0.0.1:${(line as { port: number }).port}`;
      const command = { action: { action: "run", args: { command: 'echo "$STDIN_SECRET"' } } };
      expect((await post(url, "/execute_action", command)).status).toBe(403);
      const obs = await post(url, "/execute_action", command, stdinKey);
      expect(obs.json.content).toBe(secret);
      const key = await post(
        url,
        "/execute_action",
        { action: { action: "run", args: { command: "printenv SESSION_API_KEY || echo no key" } } },
        stdinKey,
      );
      expect(key.json.content).toBe("no key");
      expect(stderr() + stdout()).not.toContain(stdinKey);
    } finally {
      proc.kill("SIGKILL");
    }
  });

  it.each([
    ["not JSON", "stdin-secret-not-json", /stdin is not JSON \(21 characters\)/],
    ["a JSON array", '["stdin-secret-in-array"]', /stdin holds JSON array, not an object/],
    [
      "bad names and values",
      '{"OK":"stdin-secret-ok","bad name":"stdin-secret-x","NUM":7}',
      /"bad name": not a variable name[\s\S]*NUM: expected a string, got number/,
    ],
  ])("exits 2 on %s, naming what is wrong and never a value", async (_what, input, message) => {
    const proc = spawnWithStdin(input);
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => proc.on("exit", res));
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err).toContain("--env-from-stdin");
    expect(err).not.toContain("stdin-secret");
  });
});
