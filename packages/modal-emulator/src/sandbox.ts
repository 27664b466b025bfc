// One sandbox as local processes: its process group (under bwrap or plain), stdio, execs and tunnel upstreams.
// What it shares with container sandboxes (result, stdin, exec bookkeeping, timers, tunnels) lives in
// sandbox-lifecycle.ts; isolation, tunnels and execs' own bookkeeping in isolation.ts, tunnels.ts and exec.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import { childStdin, ExecRecord, type ExitStatus, killGroup, StdinSink } from "./exec.js";
import { startFsToolExec } from "./fs-tool.js";
import { moveNamedPorts } from "./host-ports.js";
import { type HostView, parseChildPid, waitForNamespaceSetup } from "./isolation.js";
import {
  type ExecOptions,
  type LifecycleContext,
  SandboxLifecycle,
  type SandboxSpec,
} from "./sandbox-lifecycle.js";
import { type Relay, startRelay, type Upstream } from "./tunnels.js";

export {
  EXEC_TIMEOUT_EXIT_CODE,
  type ExecOptions,
  GenericStatus,
  type SandboxResult,
  type SandboxSpec,
} from "./sandbox-lifecycle.js";

/** What a local sandbox needs from the emulator around it. */
export interface SandboxContext extends LifecycleContext {
  view: HostView;
  /** This sandbox's root directory on the host. */
  root: string;
  /** Directory for the tunnel relay's unix sockets (kept short: socket paths are limited to 107 bytes). */
  socketDir: string;
  privateDirs: readonly string[];
  baseEnv: Record<string, string>;
  keepRoot: boolean;
  onFinished(sandbox: SandboxRecord): void;
}

function signalNumber(signal: NodeJS.Signals | null): number | undefined {
  if (signal === null) return undefined;
  return (osConstants.signals as Record<string, number>)[signal] ?? 9;
}

/**
 * One sandbox: a process group (under bwrap with its own root, network, PID and IPC namespaces, or plain on
 * the host), its stdio, execs, tunnels and the timers that end it (timeout, idle timeout).
 */
export class SandboxRecord extends SandboxLifecycle {
  readonly #ctx: SandboxContext;
  #child: ChildProcess | undefined;
  #nsPid: number | undefined;
  /** Isolation "none": environment variables rewritten for moved ports (execs see them too). */
  #movedEnv: Record<string, string> = {};
  #relay: Relay | undefined;

  constructor(spec: SandboxSpec, ctx: SandboxContext) {
    super(spec, ctx);
    this.#ctx = ctx;
  }

  /** This sandbox's root directory on the host. */
  get root(): string {
    return this.#ctx.root;
  }

  /** Host pid of the main process (bwrap itself under bwrap). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the main process and opens the tunnels. */
  async start(): Promise<void> {
    // Stopped before it started (the emulator is closing): never spawn.
    if (!this.accepting) return;
    const { view, root } = this.#ctx;
    view.prepareRoot(root, this.#ctx.privateDirs);
    const workdir = this.spec.workdir;
    if (!view.isHostPath(workdir)) mkdirSync(view.toHost(root, workdir).hostPath, { recursive: true });
    let argv = this.spec.command.length > 0 ? this.spec.command : ["sleep", "infinity"];
    if (view.mode === "none" && this.spec.ports.length > 0) {
      const moved = await moveNamedPorts(
        argv,
        this.spec.env,
        this.spec.ports.map((p) => p.port),
      );
      // Stopped while a port was picked: never spawn.
      if (!this.accepting) {
        this.rejectReady(new Error("sandbox stopped before it started"));
        return;
      }
      argv = moved.argv;
      // Isolation "none": container ports the command names, moved to free host ports (see moveNamedPorts).
      this.hostPorts = moved.hostPorts;
      this.#movedEnv = moved.env;
    }
    const env = this.#env({ ...this.spec.env, ...this.#movedEnv });
    let child: ChildProcess;
    if (view.mode === "bwrap") {
      child = spawn(view.bwrapPath, view.bwrapArgs(root, workdir, argv, 3), {
        detached: true,
        env,
        stdio: ["pipe", "pipe", "pipe", "pipe"],
      });
      let info = "";
      const infoStream = child.stdio[3] as NodeJS.ReadableStream | null;
      infoStream?.on("data", (d: Buffer) => {
        info += d.toString();
        const pid = parseChildPid(info);
        if (pid !== undefined && this.#nsPid === undefined) {
          this.#nsPid = pid;
          void waitForNamespaceSetup(pid).then(() => this.resolveReady());
        }
      });
      infoStream?.on("error", () => {});
    } else {
      const [file, ...args] = argv.map((a) => view.remapArg(root, a));
      child = spawn(file!, args, {
        detached: true,
        env,
        cwd: view.toHost(root, workdir).hostPath,
        stdio: "pipe",
      });
      child.once("spawn", () => this.resolveReady());
    }
    this.#child = child;
    this.stdin = new StdinSink(childStdin(child));
    child.stdout?.on("data", (d: Buffer) => this.stdout.write(d));
    child.stderr?.on("data", (d: Buffer) => this.stderr.write(d));
    child.on("error", (err: NodeJS.ErrnoException) => {
      // Spawn failures (no such command) end the sandbox like a failed entrypoint.
      this.stderr.write(Buffer.from(`modal-emulator: cannot start ${argv[0]}: ${err.message}\n`));
      this.rejectReady(err);
      void this.#finalize(err.code === "ENOENT" ? 127 : 126, null);
    });
    child.on("exit", (code, signal) => {
      this.rejectReady(new Error("sandbox exited before it was ready"));
      // The container ends with its main process: nothing it started may outlive it.
      killGroup(child.pid, "SIGKILL");
      const fallback = setTimeout(() => void this.#finalize(code, signal), 1000);
      child.once("close", () => {
        clearTimeout(fallback);
        void this.#finalize(code, signal);
      });
    });

    this.armTimers();

    if (this.spec.ports.length > 0) {
      if (view.mode === "bwrap") {
        mkdirSync(this.#ctx.socketDir, { recursive: true });
        void this.ready().then(
          () => {
            if (this.running && this.#nsPid !== undefined) {
              this.#relay = startRelay(
                view.nsenterPath,
                this.#nsPid,
                this.#ctx.socketDir,
                this.spec.ports.map((p) => p.port),
              );
            }
          },
          () => {},
        );
      }
      await this.openTunnels();
    }
  }

  protected override fsToolExec(options: ExecOptions): ExecRecord {
    return startFsToolExec(options.execId, options.argv, { view: this.#ctx.view, root: this.#ctx.root });
  }

  protected override endMain(): void {
    if (this.#child?.pid !== undefined && this.#child.exitCode === null && this.#child.signalCode === null) {
      killGroup(this.#child.pid, "SIGKILL");
    } else {
      void this.#finalize(null, "SIGKILL");
    }
  }

  protected override startExec(options: ExecOptions): ExecRecord {
    const workdir = options.workdir ?? this.spec.workdir;
    const { view, root } = this.#ctx;
    const env = this.#env({ ...this.spec.env, ...this.#movedEnv, ...options.env });
    const stdio: ("pipe" | "ignore")[] = [
      "pipe",
      options.stdoutConfig === 0 ? "ignore" : "pipe",
      options.stderrConfig === 0 ? "ignore" : "pipe",
    ];
    let child: ChildProcess;
    if (view.mode === "bwrap") {
      child = spawn(view.nsenterPath, view.nsenterArgs(this.#nsPid!, workdir, options.argv), {
        detached: true,
        env,
        stdio,
      });
    } else {
      const cwd = view.toHost(root, workdir).hostPath;
      const [file, ...args] = options.argv.map((a) => view.remapArg(root, a));
      if (!existsSync(cwd)) {
        const record = new ExecRecord(options.execId, { write: () => {}, end: () => {} }, () => {});
        record.stderr.write(Buffer.from(`modal-emulator: workdir ${workdir} does not exist\n`));
        record.finish({ code: 125 });
        return record;
      }
      child = spawn(file!, args, { detached: true, env, cwd, stdio });
    }
    const record = new ExecRecord(options.execId, childStdin(child), (signal) =>
      killGroup(child.pid, signal),
    );
    child.stdout?.on("data", (d: Buffer) => record.stdout.write(d));
    const errTarget = options.stderrConfig === 2 ? record.stdout : record.stderr;
    child.stderr?.on("data", (d: Buffer) => errTarget.write(d));
    child.on("error", (err: NodeJS.ErrnoException) => {
      record.stderr.write(Buffer.from(`modal-emulator: ${options.argv[0]}: ${err.message}\n`));
      record.finish({ code: err.code === "ENOENT" ? 127 : 126 });
    });
    child.on("close", (code, signal) => {
      const status: ExitStatus = code !== null ? { code } : { signal: signalNumber(signal) ?? 9 };
      record.finish(status);
    });
    return record;
  }

  #env(extra: Record<string, string>): Record<string, string> {
    const { view, root } = this.#ctx;
    const home = view.mode === "bwrap" ? "/root" : view.toHost(root, "/root").hostPath;
    const env: Record<string, string> = { ...this.#ctx.baseEnv, HOME: home, SHLVL: "1" };
    if (view.mode === "none") env["TMPDIR"] = view.toHost(root, "/tmp").hostPath;
    return { ...env, ...extra };
  }

  protected override async upstream(port: number): Promise<Upstream> {
    if (this.#ctx.view.mode === "none") {
      return { kind: "tcp", host: "127.0.0.1", port: this.hostPorts.get(port) ?? port };
    }
    await this.ready();
    // The relay starts right after the namespaces exist; wait for it to listen.
    for (let i = 0; i < 100 && !this.#relay && this.running; i++) await new Promise((r) => setTimeout(r, 10));
    if (!this.#relay) throw new Error("tunnel relay is not running");
    await this.#relay.ready;
    return { kind: "unix", path: `${this.#ctx.socketDir}/${port}.sock` };
  }

  async #finalize(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (!this.settle(code ?? 128 + (signalNumber(signal) ?? 9))) return;
    this.stdout.close();
    this.stderr.close();
    if (this.#relay) {
      killGroup(this.#relay.child.pid, "SIGKILL");
      this.#relay.child.stdin?.destroy();
    }
    this.#child?.stdin?.destroy();
    this.announce();
    this.#ctx.onFinished(this);
    if (!this.#ctx.keepRoot) {
      await rm(this.#ctx.root, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
      await rm(this.#ctx.socketDir, { recursive: true, force: true }).catch(() => {});
    }
    this.markFinalized();
  }
}
