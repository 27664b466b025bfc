import { type ChildProcess, type StdioOptions, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Readable } from "node:stream";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { bubblewrapArgs, SANDBOX_RUN_DIR } from "./bwrap-profile.js";
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

/** File descriptors of a bubblewrap launch (in bwrap's stdio). */
export const BWRAP_FDS = { info: 3, seccomp: 4, natExit: 5 } as const;

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
  /** Bubblewrap only: host directory of the server's socket, an empty file and dir to mask with. */
  runDir?: string;
  emptyFile?: string;
  emptyDir?: string;
  /** Bubblewrap only: host path of the compiled seccomp program. */
  seccompFile?: string;
  /** Bubblewrap with egress: host path of the resolv.conf pointing at the NAT's DNS. */
  resolvConf?: string;
  /** Cgroups (pids, memory) the sandbox's first process joins before anything else runs. */
  cgroupDirs?: string[];
  /** Host path of the shell wrapper that applies per-command limits (see {@link shellWrapper}). */
  shellWrapper?: string;
}

/** Builds argv: [sh (joins the cgroup)] [prlimit ...] [bwrap ...] node server ... */
export function buildArgv(spec: LaunchSpec): string[] {
  const node = spec.options.nodePath ?? process.execPath;
  const server = [node, spec.serverBin, "0", "--working-dir", spec.sandboxWorkspace, "--host", "127.0.0.1"];
  let argv = server;
  if (spec.isolation === "bubblewrap") {
    server.push("--socket", `${SANDBOX_RUN_DIR}/server.sock`);
    const bwrap = bubblewrapArgs({
      node,
      serverBin: spec.serverBin,
      hostWorkspace: spec.hostWorkspace,
      homeDir: spec.homeDir,
      runDir: spec.runDir ?? join(spec.stateDir, "run"),
      emptyFile: spec.emptyFile ?? join(spec.stateDir, "empty"),
      emptyDir: spec.emptyDir ?? join(spec.stateDir, "empty.d"),
      ...(spec.resolvConf ? { resolvConf: spec.resolvConf } : {}),
      ...(spec.shellWrapper ? { shellWrapper: spec.shellWrapper } : {}),
      extraBinds: spec.options.extraBinds,
      ...(spec.seccompFile ? { seccompFd: BWRAP_FDS.seccomp } : {}),
      infoFd: BWRAP_FDS.info,
      dropCapabilities: process.getuid?.() === 0,
    });
    argv = [which("bwrap") ?? "bwrap", ...bwrap, "--", ...server];
  }
  // Limits on the server itself are only those that cannot hurt it: file size, and the process count where
  // no cgroup counts it. Memory and CPU time bound the shell and what it runs (see shellWrapper()): a memory
  // rlimit on Node kills it at start (V8 reserves more address space than the limit), and a CPU-time
  // rlimit would end a long-lived server.
  const { limits } = spec.options;
  const rl: string[] = [];
  if (limits.maxProcesses && !spec.cgroupDirs?.length) rl.push(`--nproc=${limits.maxProcesses}`);
  if (limits.maxFileMiB) rl.push(`--fsize=${limits.maxFileMiB * 1024 * 1024}`);
  if (rl.length > 0) argv = [prlimitPath(), ...rl, "--", ...argv];
  if (spec.cgroupDirs?.length) {
    // Join the cgroups first, so every process of the sandbox is counted from its very first fork.
    const script =
      'IFS=:; for d in $0; do echo $$ > "$d/cgroup.procs" || exit 125; done; unset IFS; exec "$@"';
    argv = ["/bin/sh", "-c", script, spec.cgroupDirs.join(":"), ...argv];
  }
  return argv;
}

function prlimitPath(): string {
  const prlimit = which("prlimit");
  if (!prlimit) {
    throw new RuntimeError(
      "UNSUPPORTED",
      "limits: `prlimit` (util-linux) is not installed; install it (apt-get install util-linux) or remove `limits`.",
    );
  }
  return prlimit;
}

/**
 * The shell wrapper's script when per-command limits apply (memory without a memory cgroup, CPU time), or
 * undefined: `prlimit` sets soft and hard limits on bash, so every command inherits them and none can raise
 * them (that needs CAP_SYS_RESOURCE, which a bubblewrap sandbox does not have).
 */
export function shellWrapper(
  limits: ResolvedLocalRuntimeOptions["limits"],
  memoryInCgroup: boolean,
): string | undefined {
  const rl: string[] = [];
  if (limits.memoryMiB && !memoryInCgroup) rl.push(`--data=${limits.memoryMiB * 1024 * 1024}`);
  if (limits.cpuSeconds) rl.push(`--cpu=${limits.cpuSeconds}`);
  if (rl.length === 0) return undefined;
  return `#!/bin/sh\nexec ${prlimitPath()} ${rl.join(" ")} -- bash "$@"\n`;
}

/** A started server process whose stdout/stderr go to a log file (so it survives the host's exit). */
export interface StartedServer {
  child: ChildProcess;
  pid: number;
  logPath: string;
  /** Bubblewrap only: bwrap's info pipe (it writes the sandbox init's pid) and the NAT's exit pipe. */
  info?: Readable;
  natExit?: Readable;
}

/** Spawns the server detached, in its own process group, with output to `<stateDir>/server.log`. */
export function spawnServer(spec: LaunchSpec): StartedServer {
  const argv = buildArgv(spec);
  const logPath = join(spec.stateDir, "server.log");
  const fd = openSync(logPath, "a", 0o600);
  const seccompFd = spec.seccompFile ? openSync(spec.seccompFile, "r") : undefined;
  try {
    const stdio: StdioOptions =
      spec.isolation === "bubblewrap"
        ? ["ignore", fd, fd, "pipe", seccompFd ?? "ignore", "pipe"]
        : ["ignore", fd, fd];
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio,
      env: spec.env,
      cwd: spec.hostWorkspace,
    });
    if (child.pid === undefined) throw new RuntimeError("INTERNAL", `Could not start ${argv[0]}`);
    const started: StartedServer = { child, pid: child.pid, logPath };
    if (spec.isolation === "bubblewrap") {
      const pipes = child.stdio as unknown as (Readable | null)[];
      started.info = pipes[BWRAP_FDS.info] ?? undefined;
      started.natExit = pipes[BWRAP_FDS.natExit] ?? undefined;
    }
    return started;
  } finally {
    closeSync(fd);
    if (seccompFd !== undefined) closeSync(seccompFd);
  }
}

/**
 * Reads bwrap's `--info-fd` JSON: the pid (in the host's view) of the sandbox's init process. The pipe is
 * read to its end (bwrap closes it after the whole document): closing it early would kill bwrap with SIGPIPE.
 */
export function readSandboxInitPid(info: Readable, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => {
      info.destroy();
      reject(new RuntimeError("TIMEOUT", `bubblewrap did not report its sandbox within ${timeoutMs} ms`));
    }, timeoutMs);
    info.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8");
    });
    info.on("error", () => undefined);
    info.on("close", () => {
      clearTimeout(timer);
      const m = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
      else
        reject(
          new RuntimeError(
            "UNAVAILABLE",
            "bubblewrap exited before it started the sandbox; see the server log.",
          ),
        );
    });
  });
}

/**
 * Kills every process whose session id is `sid` (the server runs detached, as its own session leader, and
 * nothing it starts leaves the session except by setsid()). Used with `isolation: "none"`, where there is no
 * PID namespace: after the server died, its shell and commands are found by session. Repeats until none is
 * left (a process may fork while it is being killed), for at most `timeoutMs`.
 */
export function killSession(sid: number, timeoutMs = 2000): Promise<void> {
  return killUntilGone(() => sessionMembers(sid), timeoutMs);
}

/** SIGKILLs what `find` returns, again and again (a process may fork while dying), until nothing is left. */
async function killUntilGone(find: () => number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found.length === 0) return;
    for (const pid of found) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The variable every process of a sandbox inherits, naming the sandbox (not a secret). */
export const SANDBOX_ID_VARIABLE = "AGENT_RUNTIME_SANDBOX_ID";

/**
 * Kills every process of this user whose environment has `name=value`: with `isolation: "none"` (no PID
 * namespace, no cgroup) this finds what left the server's session (setsid, a shell's own session) after
 * the server died. Best effort: a process that cleared its environment is not found.
 */
export function killMarked(name: string, value: string, timeoutMs = 2000): Promise<void> {
  const needle = Buffer.from(`\0${name}=${value}\0`);
  return killUntilGone(
    () =>
      procEntries().filter((pid) => {
        if (pid === process.pid) return false;
        try {
          return Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${pid}/environ`)]).includes(needle);
        } catch {
          return false; // gone, or not ours
        }
      }),
    timeoutMs,
  );
}

function procEntries(): number[] {
  try {
    return readdirSync("/proc")
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}

/** Live (non-zombie) processes of session `sid`, from /proc. */
export function sessionMembers(sid: number): number[] {
  return procEntries().filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // Fields after the command (which may hold spaces and parentheses): state ppid pgrp session ...
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return fields[0] !== "Z" && Number(fields[3]) === sid;
    } catch {
      return false; // exited meanwhile
    }
  });
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
