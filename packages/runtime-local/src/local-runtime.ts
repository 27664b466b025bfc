import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { actionServerBinPath } from "@agent-runtime/action-server";
import {
  BaseRuntime,
  type PluginContext,
  type ProvisionedSandbox,
  type ProvisionRequest,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  type SandboxCostSpec,
} from "@agent-runtime/runtime-core";
import type { ResolvedLocalRuntimeOptions } from "./options.js";
import { logTail, processAlive, readListeningLine, spawnServer, stopGroup } from "./sandbox-process.js";

/** Fields runtime-local keeps in a handle's `data`. */
interface LocalHandleData {
  pid: number;
  stateDir: string;
  hostWorkspace: string;
  ownsWorkspace: boolean;
  isolation: "none" | "bubblewrap";
}

const SANDBOX_WORKSPACE = "/workspace";

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
    const stateDir = join(stateBase, sandboxId);
    const homeDir = join(stateDir, "home");
    mkdirSync(homeDir, { recursive: true, mode: 0o700 });
    // Temporary files of the server and its commands live in the state dir and go with it on close (under
    // bubblewrap /tmp is private anyway). Without this, a killed server would leave its shell's FIFO dir.
    const tmpDir = this.#isolation === "bubblewrap" ? "/tmp" : join(stateDir, "tmp");
    if (this.#isolation !== "bubblewrap") mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
    const ownsWorkspace = this.#options.workspaceDir === undefined;
    const hostWorkspace = this.#options.workspaceDir ?? mkdtempSync(join(tmpdir(), "ar-workspace-"));
    mkdirSync(hostWorkspace, { recursive: true });
    const sessionApiKey = randomBytes(24).toString("base64url");
    const socketPath =
      this.#isolation === "bubblewrap" && !this.#options.network ? join(stateDir, "server.sock") : undefined;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      LANG: process.env.LANG ?? "C.UTF-8",
      HOME: homeDir,
      TMPDIR: tmpDir,
      SHLVL: "1",
      TERM: "xterm",
      ...this.#options.env,
      ...(request.secrets?.env ?? {}),
      SESSION_API_KEY: sessionApiKey,
      NO_CHANGE_TIMEOUT_SECONDS: String(this.#options.noChangeTimeoutSeconds),
    };
    this.#local = { pid: 0, stateDir, hostWorkspace, ownsWorkspace, isolation: this.#isolation };
    const started = spawnServer({
      options: this.#options,
      isolation: this.#isolation,
      serverBin: actionServerBinPath(),
      stateDir,
      homeDir,
      hostWorkspace,
      sandboxWorkspace: this.#isolation === "bubblewrap" ? SANDBOX_WORKSPACE : hostWorkspace,
      env,
      ...(socketPath ? { socketPath } : {}),
    });
    this.#local.pid = started.pid;
    started.child.once("exit", (code, signal) => {
      this.#exit = `the action server exited (${signal ?? `code ${code}`})`;
      this.#stopWatching();
      this.markDisconnected(this.#exit);
    });
    started.child.unref();

    const deadline = Date.now() + this.#options.startupTimeoutMs;
    let listening: ReturnType<typeof readListeningLine>;
    try {
      listening = await this.#waitListening(started.logPath, deadline, request.signal);
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
      workspaceDir: this.#isolation === "bubblewrap" ? SANDBOX_WORKSPACE : hostWorkspace,
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
      // The sandbox is gone for good: free what it left on disk, as close() would have.
      this.#removeDirs(data);
      throw new RuntimeError(
        "NOT_FOUND",
        `The local sandbox of session ${handle.sessionId} (pid ${data.pid}) is not running any more; create a new runtime.`,
      );
    }
    const sandbox = await super.reattach(handle);
    this.#local = { ...data };
    // Not our child any more: watch the pid so a dead sandbox is reported within a second.
    this.#watch = setInterval(() => {
      if (!processAlive(data.pid)) {
        this.#exit = `the action server (pid ${data.pid}) exited`;
        this.#stopWatching();
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
    if (local.pid > 0) await stopGroup(local.pid);
    this.#removeDirs(local);
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
