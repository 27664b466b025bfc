// About 400 lines: one backend's provisioning (bubblewrap or plain process group, cgroups, NAT, readiness,
// re-attach, teardown), each step a method of the same sandbox; the profile, seccomp, NAT and cgroup details
// live in their own modules.
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { actionServerBinPath } from "@agent-runtime/action-server";
import {
  BaseRuntime,
  type PluginContext,
  type ProvisionedSandbox,
  type ProvisionRequest,
  type ResolvedSessionOverrides,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  type SandboxCostSpec,
} from "@agent-runtime/runtime-core";
import { SANDBOX_HOME, SANDBOX_SHELL_WRAPPER, SANDBOX_WORKSPACE } from "./bwrap-profile.js";
import { cgroupBase, createSandboxCgroups, removeCgroup } from "./cgroups.js";
import { applyAllowList } from "./egress-allow.js";
import { NAT_NAMESERVER, startNatNetwork } from "./nat-network.js";
import type { ResolvedLocalRuntimeOptions } from "./options.js";
import {
  killMarked,
  killSession,
  type LaunchSpec,
  logTail,
  processAlive,
  readListeningLine,
  readSandboxInitPid,
  SANDBOX_ID_VARIABLE,
  type StartedServer,
  shellWrapper,
  spawnServer,
  stopGroup,
} from "./sandbox-process.js";
import { buildSeccompFilter } from "./seccomp.js";

/** Fields runtime-local keeps in a handle's `data`. */
interface LocalHandleData {
  /** The launcher: leader of the sandbox's process group and session. */
  pid: number;
  /** Bubblewrap: the sandbox's PID-namespace init, as the host sees it. */
  initPid?: number;
  /** Egress: the slirp4netns process. */
  natPid?: number;
  /** The sandbox's cgroups (pids; memory with `limits.memoryMiB`), where writable. */
  cgroupDirs?: string[];
  stateDir: string;
  hostWorkspace: string;
  ownsWorkspace: boolean;
  isolation: "none" | "bubblewrap";
}

/** The compiled seccomp program, built once per process. */
let seccompProgram: Buffer | undefined;
function sandboxSeccompFilter(): Buffer {
  seccompProgram ??= buildSeccompFilter();
  return seccompProgram;
}

/**
 * Resolves true once process `pid` has a child, false when that cannot be seen (the process is gone, or this
 * kernel has no `/proc/<pid>/task/<tid>/children`) or at `deadline`.
 */
async function waitForChild(pid: number, deadline: number): Promise<boolean> {
  const file = `/proc/${pid}/task/${pid}/children`;
  while (Date.now() < deadline) {
    let children: string;
    try {
      children = readFileSync(file, "utf8");
    } catch {
      return false;
    }
    if (children.trim() !== "") return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

/** The command line of a process, or "" when it is gone. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone
  }
}

/** One local sandbox: the bundled action-server as a child process group (optionally inside bubblewrap). */
export class LocalRuntime extends BaseRuntime {
  readonly #options: ResolvedLocalRuntimeOptions;
  readonly #isolation: "none" | "bubblewrap";
  #local: LocalHandleData | undefined;
  #exit: string | undefined;
  #watch: NodeJS.Timeout | undefined;

  constructor(init: {
    sessionId: string;
    options: ResolvedLocalRuntimeOptions;
    isolation: "none" | "bubblewrap";
    capabilities: RuntimeCapabilities;
    context: PluginContext;
    attachTo?: RuntimeHandle;
    /** The session's overrides (already merged into `options` by the provider). */
    overrides?: ResolvedSessionOverrides;
  }) {
    super({
      backend: "local",
      sessionId: init.sessionId,
      capabilities: init.capabilities,
      context: init.context,
      startupTimeoutMs: init.options.startupTimeoutMs,
      keepAlive: init.options.keepAlive,
      defaultActionTimeoutMs: init.options.defaultActionTimeoutMs,
      ...(init.attachTo ? { attachTo: init.attachTo } : {}),
      ...(init.overrides ? { overrides: init.overrides } : {}),
    });
    this.#options = init.options;
    this.#isolation = init.isolation;
  }

  /** The isolation this sandbox runs under. */
  get isolation(): "none" | "bubblewrap" {
    return this.#local?.isolation ?? this.#isolation;
  }

  /** Host path of the workspace directory (where `/workspace` lives under bubblewrap). */
  get hostWorkspaceDir(): string | undefined {
    return this.#local?.hostWorkspace;
  }

  /** OS process id of the sandbox's leader (bubblewrap or the server). */
  get pid(): number | undefined {
    return this.#local?.pid;
  }

  protected override costSpec(): SandboxCostSpec {
    return { provider: "local", cpuCores: 1, memoryMiB: this.#options.limits.memoryMiB ?? 1024 };
  }

  protected override deathReason(): string | undefined {
    return this.#exit;
  }

  protected async provision(request: ProvisionRequest): Promise<ProvisionedSandbox> {
    const sandboxId = `local-${randomUUID().slice(0, 13)}`;
    const stateBase = this.#options.stateDir ?? join(tmpdir(), "agent-runtime-local");
    mkdirSync(stateBase, { recursive: true, mode: 0o700 });
    const stateDir = join(stateBase, sandboxId);
    const homeDir = join(stateDir, "home");
    mkdirSync(homeDir, { recursive: true, mode: 0o700 });
    const bwrap = this.#isolation === "bubblewrap";
    // Temporary files of the server and its commands live in the state dir and go with it on close (under
    // bubblewrap /tmp is private anyway). Without this, a killed server would leave its shell's FIFO dir.
    const tmpDir = bwrap ? "/tmp" : join(stateDir, "tmp");
    if (!bwrap) mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
    const ownsWorkspace = this.#options.workspaceDir === undefined;
    const hostWorkspace = this.#options.workspaceDir ?? mkdtempSync(join(tmpdir(), "ar-workspace-"));
    mkdirSync(hostWorkspace, { recursive: true });
    const sessionApiKey = randomBytes(24).toString("base64url");
    const network = this.#options.network;
    const egress = bwrap && network !== "none";
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      LANG: process.env.LANG ?? "C.UTF-8",
      HOME: bwrap ? SANDBOX_HOME : homeDir,
      TMPDIR: tmpDir,
      SHLVL: "1",
      TERM: "xterm",
      ...this.#options.env,
      ...(request.secrets?.env ?? {}),
      [SANDBOX_ID_VARIABLE]: sandboxId,
      SESSION_API_KEY: sessionApiKey,
      NO_CHANGE_TIMEOUT_SECONDS: String(this.#options.noChangeTimeoutSeconds),
    };
    this.#local = { pid: 0, stateDir, hostWorkspace, ownsWorkspace, isolation: this.#isolation };
    let spec: LaunchSpec = {
      options: this.#options,
      isolation: this.#isolation,
      serverBin: actionServerBinPath(),
      stateDir,
      homeDir,
      hostWorkspace,
      sandboxWorkspace: bwrap ? SANDBOX_WORKSPACE : hostWorkspace,
      env,
    };
    let socketPath: string | undefined;
    const deadline = Date.now() + this.#options.startupTimeoutMs;
    let started: StartedServer;
    try {
      if (bwrap) {
        const runDir = join(stateDir, "run");
        mkdirSync(runDir, { mode: 0o700 });
        mkdirSync(join(stateDir, "empty.d"), { mode: 0o500 });
        writeFileSync(join(stateDir, "empty"), "", { mode: 0o400 });
        writeFileSync(join(stateDir, "seccomp.bpf"), sandboxSeccompFilter(), { mode: 0o400 });
        spec = {
          ...spec,
          runDir,
          emptyFile: join(stateDir, "empty"),
          emptyDir: join(stateDir, "empty.d"),
          seccompFile: join(stateDir, "seccomp.bpf"),
        };
        if (egress) {
          writeFileSync(join(stateDir, "resolv.conf"), `nameserver ${NAT_NAMESERVER}\n`, { mode: 0o444 });
          spec.resolvConf = join(stateDir, "resolv.conf");
        }
        socketPath = join(runDir, "server.sock");
      }
      // A pids cgroup, where one is writable, caps the sandbox's processes and finds every one of them at
      // close, even those that left the session (setsid) after the server died. A memory cgroup bounds the
      // whole sandbox's memory without an address-space limit on the server.
      const limits = this.#options.limits;
      const cgroupDirs = createSandboxCgroups(sandboxId, {
        maxProcesses: limits.maxProcesses ?? "max",
        ...(limits.memoryMiB ? { memoryMiB: limits.memoryMiB } : {}),
      });
      if (cgroupDirs.length > 0) {
        spec.cgroupDirs = cgroupDirs;
        this.#local.cgroupDirs = cgroupDirs;
      }
      const memoryInCgroup = cgroupDirs.some((dir) => dir.startsWith(cgroupBase("memory")?.dir ?? "\0"));
      const wrapper = shellWrapper(limits, memoryInCgroup);
      if (wrapper) {
        const path = join(stateDir, "limited-shell");
        writeFileSync(path, wrapper, { mode: 0o555 });
        spec.shellWrapper = path;
        env.ACTION_SERVER_SHELL = bwrap ? SANDBOX_SHELL_WRAPPER : path;
      }
      started = spawnServer(spec);
    } catch (err) {
      await this.destroy(undefined, "start failed");
      throw err;
    }
    this.#local.pid = started.pid;
    started.child.once("exit", (code, signal) => {
      this.#exit = `the action server exited (${signal ?? `code ${code}`})`;
      this.#stopWatching();
      // Whatever the server started dies with it (a PID namespace does this by itself under bubblewrap).
      if (this.#local) void this.#killRemains(this.#local);
      this.markDisconnected(this.#exit);
    });
    started.child.unref();

    let listening: ReturnType<typeof readListeningLine>;
    try {
      const initPidOf = started.info
        ? readSandboxInitPid(started.info, Math.max(1, deadline - Date.now()))
        : Promise.resolve(undefined);
      try {
        const listeningOf = this.#waitListening(started.logPath, deadline, request.signal);
        // The NAT starts once bwrap has finished setting up the namespace (its loopback: slirp4netns
        // configuring the same namespace meanwhile once made bwrap fail with RTM_NEWADDR). The sandbox's init
        // forks the server only after that setup, so its first child marks the moment; the server's own
        // start then runs alongside the NAT's.
        const networkOf = (async () => {
          const initPid = await initPidOf;
          if (initPid === undefined) return;
          this.#local!.initPid = initPid;
          if (!egress) return;
          if (!(await waitForChild(initPid, deadline))) await listeningOf;
          if (typeof network === "object") await applyAllowList(initPid, network.allow);
          const logFd = openSync(started.logPath, "a");
          try {
            const nat = await startNatNetwork({
              targetPid: initPid,
              exitFd: started.natExit!,
              logFd,
              timeoutMs: Math.max(1, deadline - Date.now()),
            });
            this.#local!.natPid = nat.pid;
          } finally {
            closeSync(logFd);
          }
        })();
        [listening] = await Promise.all([listeningOf, networkOf]);
      } finally {
        started.natExit?.destroy();
      }
    } catch (err) {
      // Leave nothing behind: the base class only destroys sandboxes that provision() returned.
      await this.destroy(undefined, "start failed");
      throw err;
    }
    const url = socketPath ? "http://sandbox.local" : `http://127.0.0.1:${listening.port}`;
    return {
      sandboxId,
      url,
      sessionApiKey,
      workspaceDir: bwrap ? SANDBOX_WORKSPACE : hostWorkspace,
      ...(socketPath ? { socketPath } : {}),
      data: { ...this.#local },
    };
  }

  async #waitListening(
    logPath: string,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<{ port?: number; socket?: string }> {
    for (;;) {
      const listening = readListeningLine(logPath);
      if (listening) return listening;
      if (this.#exit) {
        throw new RuntimeError(
          "UNAVAILABLE",
          `The local sandbox failed to start: ${this.#exit}. Server log: ${logTail(logPath)}`,
        );
      }
      if (signal?.aborted) throw new RuntimeError("CANCELLED", "connect() was aborted");
      if (Date.now() > deadline) {
        throw new RuntimeError(
          "TIMEOUT",
          `The local action server did not start within ${this.#options.startupTimeoutMs} ms (startupTimeoutMs). Server log: ${logTail(logPath)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  }

  protected override async reattach(handle: RuntimeHandle): Promise<ProvisionedSandbox> {
    const data = handle.data as unknown as LocalHandleData;
    if (typeof data.pid !== "number" || typeof data.stateDir !== "string") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        "handle.data: not a runtime-local handle (pid and stateDir are missing)",
      );
    }
    if (!processAlive(data.pid)) {
      // The sandbox is gone for good: free what it left on disk and its cgroups, as close() would have.
      this.#removeDirs(data);
      for (const dir of Array.isArray(data.cgroupDirs) ? data.cgroupDirs : [])
        await removeCgroup(String(dir));
      throw new RuntimeError(
        "NOT_FOUND",
        `The local sandbox of session ${handle.sessionId} (pid ${data.pid}) is not running any more; create a new runtime.`,
      );
    }
    const sandbox = await super.reattach(handle);
    this.#local = { ...data };
    const local = this.#local;
    // Not our child any more: watch the pid so a dead sandbox is reported within a second.
    this.#watch = setInterval(() => {
      if (!processAlive(data.pid)) {
        this.#exit = `the action server (pid ${data.pid}) exited`;
        this.#stopWatching();
        void this.#killRemains(local);
        this.markDisconnected(this.#exit);
      }
    }, 250);
    this.#watch.unref();
    return sandbox;
  }

  /** Closed with keepAlive: the sandbox runs on for a later attach, but this object stops watching it. */
  protected override release(): void {
    this.#stopWatching();
  }

  #stopWatching(): void {
    if (this.#watch) clearInterval(this.#watch);
    this.#watch = undefined;
  }

  protected async destroy(_sandbox: ProvisionedSandbox | undefined, _reason: string): Promise<void> {
    this.#stopWatching();
    const local = this.#local;
    if (!local) return;
    await this.#killRemains(local);
    this.#removeDirs(local);
  }

  /**
   * Stops every process of the sandbox: the PID namespace's init (its death takes every process inside),
   * the launcher's process group, the NAT helper, the session (isolation none) and the cgroup. Pids come
   * from a handle, which is input: each is checked to be what we started before it is signalled.
   */
  async #killRemains(local: LocalHandleData): Promise<void> {
    if (local.initPid && commandOf(local.initPid).includes("bwrap")) killPid(local.initPid);
    if (local.pid > 0) await stopGroup(local.pid);
    if (local.natPid && commandOf(local.natPid).includes("slirp4netns")) killPid(local.natPid);
    if (local.isolation === "none" && local.pid > 0) {
      await killSession(local.pid);
      const sandboxId = basename(local.stateDir);
      if (sandboxId.startsWith("local-")) await killMarked(SANDBOX_ID_VARIABLE, sandboxId);
    }
    for (const dir of local.cgroupDirs ?? []) await removeCgroup(dir);
  }

  /**
   * Removes a sandbox's state dir and its temporary workspace. Handles are input, so only directories this
   * package creates (recognised by place and name) are ever removed; a given `workspaceDir` never is.
   */
  #removeDirs(local: LocalHandleData): void {
    const stateBase = this.#options.stateDir ?? join(tmpdir(), "agent-runtime-local");
    if (dirname(local.stateDir) === stateBase && basename(local.stateDir).startsWith("local-")) {
      rmSync(local.stateDir, { recursive: true, force: true });
    }
    const temporary =
      dirname(local.hostWorkspace) === tmpdir() && basename(local.hostWorkspace).startsWith("ar-workspace-");
    if (local.ownsWorkspace && temporary && !this.#options.keepWorkspace) {
      rmSync(local.hostWorkspace, { recursive: true, force: true });
    }
  }
}
