import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { RuntimeError } from "@agent-runtime/runtime-core";
import type { ResolvedLocalRuntimeOptions } from "./options.js";

/** True when a process with `pid` exists (and is not a zombie we can see). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.split(") ")[1]?.[0] !== "Z";
  } catch {
    return true;
  }
}

/** Sends `signal` to the process group `pgid`, ignoring a group that is already gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs`; resolves once the leader is gone. */
export async function stopGroup(pgid: number, graceMs = 2000): Promise<void> {
  killGroup(pgid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (processAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  if (processAlive(pgid)) {
    killGroup(pgid, "SIGKILL");
    const hard = Date.now() + 2000;
    while (processAlive(pgid) && Date.now() < hard) await new Promise((r) => setTimeout(r, 10));
  }
}

/** Finds an executable on PATH. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    const full = join(dir, name);
    if (dir && existsSync(full)) return full;
  }
  return undefined;
}

let bwrapWorks: boolean | undefined;
/** True when `bwrap` exists and can create the namespaces we use (checked once per process). */
export function bubblewrapUsable(): boolean {
  if (bwrapWorks === undefined) {
    const bwrap = which("bwrap");
    bwrapWorks =
      bwrap !== undefined &&
      spawnSync(
        bwrap,
        ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-net", "true"],
        {
          stdio: "ignore",
          timeout: 5000,
        },
      ).status === 0;
  }
  return bwrapWorks;
}

/** Everything needed to start one sandbox's server. */
export interface LaunchSpec {
  options: ResolvedLocalRuntimeOptions;
  isolation: "none" | "bubblewrap";
  serverBin: string;
  stateDir: string;
  homeDir: string;
  hostWorkspace: string;
  /** Working directory as the sandbox sees it. */
  sandboxWorkspace: string;
  env: Record<string, string>;
  /** Listen on this unix socket instead of TCP (used with `network: false`). */
  socketPath?: string;
}

/** Builds argv: [prlimit ...] [bwrap ...] node server ... */
export function buildArgv(spec: LaunchSpec): string[] {
  const node = spec.options.nodePath ?? process.execPath;
  const server = [node, spec.serverBin, "0", "--working-dir", spec.sandboxWorkspace, "--host", "127.0.0.1"];
  if (spec.socketPath) server.push("--socket", spec.socketPath);
  let argv = server;
  if (spec.isolation === "bubblewrap") {
    const bwrap = [
      which("bwrap") ?? "bwrap",
      ...readOnlyRootArgs(),
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      "/tmp",
      ...hiddenHostFiles([node, spec.serverBin]).flatMap((dir) => ["--ro-bind", dir, dir]),
      "--dir",
      spec.sandboxWorkspace,
      "--bind",
      spec.hostWorkspace,
      spec.sandboxWorkspace,
      "--bind",
      spec.stateDir,
      spec.stateDir,
      "--remount-ro",
      "/",
      "--unshare-pid",
      "--unshare-ipc",
      "--chdir",
      spec.sandboxWorkspace,
    ];
    if (!spec.options.network) bwrap.push("--unshare-net");
    argv = [...bwrap, "--", ...server];
  }
  const { limits } = spec.options;
  const rl: string[] = [];
  if (limits.memoryMiB) rl.push(`--data=${limits.memoryMiB * 1024 * 1024}`);
  if (limits.cpuSeconds) rl.push(`--cpu=${limits.cpuSeconds}`);
  if (limits.maxProcesses) rl.push(`--nproc=${limits.maxProcesses}`);
  if (limits.maxFileMiB) rl.push(`--fsize=${limits.maxFileMiB * 1024 * 1024}`);
  if (rl.length > 0) {
    const prlimit = which("prlimit");
    if (!prlimit) {
      throw new RuntimeError(
        "UNSUPPORTED",
        "limits: `prlimit` (util-linux) is not installed; install it or remove `limits`.",
      );
    }
    argv = [prlimit, ...rl, "--", ...argv];
  }
  return argv;
}

/**
 * The host's root on a tmpfs root (so mount points such as /workspace can be created): every top-level entry
 * is bound read-only and symlinks such as /lib -> usr/lib are recreated; the tmpfs is remounted read-only
 * after the last mount.
 */
function readOnlyRootArgs(): string[] {
  const args = ["--tmpfs", "/"];
  for (const name of readdirSync("/")) {
    if (["proc", "dev", "tmp", "workspace"].includes(name)) continue;
    const path = `/${name}`;
    try {
      if (lstatSync(path).isSymbolicLink()) args.push("--symlink", readlinkSync(path), path);
      else args.push("--ro-bind", path, path);
    } catch {
      // vanished or unreadable: leave it out
    }
  }
  return args;
}

/**
 * The private /tmp hides host files under /tmp (a checkout in /tmp, a node from a temp install): bind the
 * directories of the server bundle and the node binary back, read-only.
 */
function hiddenHostFiles(files: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const file of files) {
    if (!file.startsWith("/tmp/")) continue;
    const dir = dirname(file);
    dirs.add(dir === "/tmp" ? file : dir);
  }
  return [...dirs];
}

/** A started server process whose stdout/stderr go to a log file (so it survives the host's exit). */
export interface StartedServer {
  child: ChildProcess;
  pid: number;
  logPath: string;
}

/** Spawns the server detached, in its own process group, with output to `<stateDir>/server.log`. */
export function spawnServer(spec: LaunchSpec): StartedServer {
  const argv = buildArgv(spec);
  const logPath = join(spec.stateDir, "server.log");
  const fd = openSync(logPath, "a", 0o600);
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: spec.env,
      cwd: spec.hostWorkspace,
    });
    if (child.pid === undefined) throw new RuntimeError("INTERNAL", `Could not start ${argv[0]}`);
    return { child, pid: child.pid, logPath };
  } finally {
    closeSync(fd);
  }
}

/** Reads the `{"event":"listening","port":N}` line the server prints once ready, if it is there yet. */
export function readListeningLine(logPath: string): { port?: number; socket?: string } | undefined {
  let text: string;
  try {
    text = readFileSync(logPath, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith('{"event":"listening"')) continue;
    try {
      return JSON.parse(line) as { port?: number; socket?: string };
    } catch {
      // partial line; wait for more
    }
  }
  return undefined;
}

/** The last `n` characters of the server log, for error messages. */
export function logTail(logPath: string, n = 800): string {
  try {
    const text = readFileSync(logPath, "utf8");
    return text.slice(-n).trim();
  } catch {
    return "";
  }
}
