/**
 * action-server: `echo hi` round trip over HTTP (p50, p99) vs spawning `bash -c "echo hi"` per command; 1 MB
 * and 50 MB command outputs (one long line, and lines) vs the same pipeline spawned and read directly, and vs
 * the same pipeline on a pty through `script` (the floor any terminal pays), with the server's peak resident
 * memory while it runs; the server's resident memory when idle (terminal renderer loaded); upload and download
 * of 100 MB vs `cp`. Targets: p50 round trip <= 2 ms and no slower than the spawn baseline (issue 3); idle RSS
 * aiming at 45 MB and 50 MB of output bounded in memory (issue 16).
 * The server is the real bundle (dist/bin.cjs) in its own process, driven over keep-alive HTTP on 127.0.0.1.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actionServerBinPath } from "@agent-runtime/action-server";
import { report, round, sample, summarize } from "./harness.ts";

const KEY = "bench-key";
const root = mkdtempSync(join(tmpdir(), "ar-bench-as-"));
const workDir = join(root, "work");
mkdirSync(join(root, "home"), { recursive: true });
const env = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: join(root, "home"),
  SHLVL: "1",
  SESSION_API_KEY: KEY,
  ACTION_SERVER_LOG_LEVEL: "warn",
};
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function startServer(): Promise<{ proc: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [actionServerBinPath(), "0", "--working-dir", workDir, "--host", "127.0.0.1"],
      {
        env,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    proc.stdout!.once("data", (d: Buffer) =>
      resolve({ proc, port: (JSON.parse(d.toString()) as { port: number }).port }),
    );
    proc.once("error", reject);
  });
}

function http(
  port: number,
  method: string,
  path: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, agent, headers: { "x-session-api-key": KEY, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(Buffer.concat(chunks))
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function runCommand(port: number, command: string): Promise<{ content: string }> {
  const body = JSON.stringify({ action: { action: "run", args: { command, blocking: true }, timeout: 300 } });
  return http(port, "POST", "/execute_action", body, { "content-type": "application/json" }).then((b) =>
    JSON.parse(b.toString()),
  );
}

/** RSS of a Node process doing nothing (what any Node server starts from). */
function emptyNodeRss(): number {
  const r = spawnSync(process.execPath, [
    "-e",
    "setTimeout(()=>{const s=require('fs').readFileSync('/proc/self/status','utf8');console.log(/VmRSS:\\s+(\\d+)/.exec(s)[1])},500)",
  ]);
  return Number(r.stdout.toString().trim()) / 1024;
}

function spawnBash(command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", command], { stdio: ["ignore", "pipe", "ignore"], env });
    let bytes = 0;
    child.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
    });
    child.once("close", () => resolve(bytes));
    child.once("error", reject);
  });
}

/** The same command on a pseudo-terminal (util-linux script), everything read: the floor of any terminal. */
function spawnPty(command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      stdio: ["pipe", "pipe", "ignore"],
      env: { ...env, SHELL: "/bin/bash" },
    });
    let bytes = 0;
    child.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
    });
    child.once("close", () => resolve(bytes));
    child.once("error", reject);
  });
}

/** Resident set size of `pid` in MiB (from /proc). */
function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
}

/** Runs `fn` while sampling `pid`'s RSS every 20 ms; returns the peak in MiB. */
async function peakRss(pid: number, fn: () => Promise<unknown>): Promise<number> {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 20);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssMiB(pid));
}

function multipart(filename: string, data: Buffer): { body: Buffer; type: string } {
  const boundary = `----bench${Date.now()}`;
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${filename}"\r\ncontent-type: application/octet-stream\r\n\r\n`,
  );
  return {
    body: Buffer.concat([head, data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

const ms = (t0: number) => performance.now() - t0;
const rows: Record<string, unknown>[] = [];
const { proc, port } = await startServer();
try {
  // 0. Idle memory: the shell is started and its terminal renderer loaded before the server listens.
  await new Promise((r) => setTimeout(r, 1000));
  const idle = rssMiB(proc.pid!);
  const info = JSON.parse((await http(port, "GET", "/server_info")).toString()) as { terminal?: string };
  rows.push({
    case: `idle RSS (terminal: ${info.terminal ?? "?"})`,
    server_rss_mib: round(idle, 1),
    baseline: "node -e (empty process)",
    baseline_rss_mib: round(emptyNodeRss(), 1),
    target: "aim 45 MiB",
  });

  // 1. echo hi round trip vs a bash spawn per command.
  const server = summarize(await sample(() => runCommand(port, "echo hi"), 300, 20));
  const spawned = summarize(await sample(() => spawnBash("echo hi"), 300, 20));
  rows.push({
    case: "echo hi round trip",
    server_p50_ms: round(server.p50),
    server_p99_ms: round(server.p99),
    baseline: "spawn bash -c",
    baseline_p50_ms: round(spawned.p50),
    baseline_p99_ms: round(spawned.p99),
    ratio_p50: round(server.p50 / spawned.p50, 2),
    target: "p50 <= 2 ms and ratio <= 1",
  });

  // 2. Large outputs: the server renders and keeps head + tail (bounded memory) vs reading everything from a
  // spawn on pipes, and from the same pipeline on a pty (what a terminal costs before any rendering).
  const outputs = [
    { mb: 1, name: "1 MB line", cmd: "head -c 1000000 /dev/zero | tr '\\0' 'x'" },
    { mb: 50, name: "50 MB line", cmd: "head -c 50000000 /dev/zero | tr '\\0' 'x'" },
    { mb: 50, name: "50 MB of lines (seq)", cmd: "seq 1 6500000 | head -c 50000000" },
  ];
  for (const { mb, name, cmd } of outputs) {
    const n = mb === 1 ? 30 : 5;
    let peak = 0;
    const serverTimes: number[] = [];
    for (let i = 0; i < n + 1; i++) {
      const t0 = performance.now();
      peak = Math.max(peak, await peakRss(proc.pid!, () => runCommand(port, cmd)));
      if (i > 0) serverTimes.push(ms(t0));
    }
    const s = summarize(serverTimes);
    const b = summarize(await sample(() => spawnBash(cmd), n, 1));
    const pty = summarize(await sample(() => spawnPty(cmd), n, 1));
    rows.push({
      case: name,
      server_p50_ms: round(s.p50),
      server_p99_ms: round(s.p99),
      baseline: "spawn + read all",
      baseline_p50_ms: round(b.p50),
      ratio_p50: round(s.p50 / b.p50, 2),
      pty_floor_p50_ms: round(pty.p50),
      ratio_to_pty_floor: round(s.p50 / pty.p50, 2),
      server_peak_rss_mib: round(peak, 1),
    });
  }

  // 3. 100 MB upload and download vs cp. curl is the client when present (Node's own HTTP client spends
  // more CPU receiving 100 MB than the server spends sending it on a loaded 2-core machine).
  const size = 100 * 1024 * 1024;
  const src = join(root, "big.bin");
  writeFileSync(src, Buffer.alloc(size, 7));
  const curl = spawnSync("curl", ["--version"]).status === 0;
  const upDest = join(workDir, "up");
  const upload = async () => {
    if (curl) {
      const r = spawnSync("curl", [
        "-sf",
        "-o",
        "/dev/null",
        "-H",
        `x-session-api-key: ${KEY}`,
        "-F",
        `file=@${src}`,
        `http://127.0.0.1:${port}/upload_file?destination=${encodeURIComponent(upDest)}`,
      ]);
      if (r.status !== 0) throw new Error("curl upload failed");
    } else {
      const form = multipart("big.bin", readFileSync(src));
      await http(port, "POST", `/upload_file?destination=${encodeURIComponent(upDest)}`, form.body, {
        "content-type": form.type,
      });
    }
  };
  const download = async () => {
    const path = `/download_files?path=${encodeURIComponent(join(upDest, "big.bin"))}`;
    if (curl) {
      const r = spawnSync("curl", [
        "-sf",
        "-o",
        join(root, "dl.zip"),
        "-H",
        `x-session-api-key: ${KEY}`,
        `http://127.0.0.1:${port}${path}`,
      ]);
      if (r.status !== 0 || statSync(join(root, "dl.zip")).size < size)
        throw new Error("curl download failed");
    } else if ((await http(port, "GET", path)).length < size) throw new Error("download too small");
  };
  const cpTimes: number[] = [];
  const upTimes: number[] = [];
  const downTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    let t0 = performance.now();
    spawnSync("cp", [src, join(root, "copy.bin")]);
    cpTimes.push(ms(t0));
    rmSync(join(root, "copy.bin"));
    t0 = performance.now();
    await upload();
    upTimes.push(ms(t0));
    if (statSync(join(upDest, "big.bin")).size !== size) throw new Error("upload size mismatch");
    t0 = performance.now();
    await download();
    downTimes.push(ms(t0));
  }
  const cp = summarize(cpTimes);
  for (const [name, times] of [
    [`upload 100 MB (${curl ? "curl" : "node"} client)`, upTimes],
    [`download 100 MB zip (${curl ? "curl" : "node"} client)`, downTimes],
  ] as const) {
    const s = summarize(times);
    rows.push({
      case: name,
      server_p50_ms: round(s.p50),
      server_p99_ms: round(s.p99),
      baseline: "cp",
      baseline_p50_ms: round(cp.p50),
      baseline_p99_ms: round(cp.p99),
      ratio_p50: round(s.p50 / cp.p50, 2),
    });
  }
} finally {
  proc.kill("SIGTERM");
  agent.destroy();
  rmSync(root, { recursive: true, force: true });
}
report("action-server", rows);
