import { randomBytes } from "node:crypto";
import { type FileHandle, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve as resolvePath } from "node:path";
import type { Writable } from "node:stream";
import { inspect } from "node:util";
import { ActionExecutionClient } from "../client/action-execution-client.js";
import type {
  CostScope,
  LeaseInfo,
  PluginContext,
  Redactor,
  ResolvedSecrets,
  SandboxCostSpec,
} from "../context.js";
import { isRuntimeError, RuntimeError, toRuntimeError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Action, ActionInput } from "../protocol/actions.js";
import {
  type CmdRunOptions,
  cmdRun,
  type EditRequest,
  fileEdit,
  fileRead,
  fileWrite,
  parseAction,
} from "../protocol/codec.js";
import { FileErrorId } from "../protocol/constants.js";
import type {
  CmdOutputObservation,
  ErrorObservation,
  FileEditObservation,
  Observation,
} from "../protocol/observations.js";
import { createZip, type ZipEntry } from "../util/zip.js";
import type { ResolvedSessionOverrides } from "./overrides.js";
import { provisionSecretFiles } from "./secret-files.js";
import {
  type DownloadToOptions,
  type RunOptions,
  type Runtime,
  type RuntimeCapabilities,
  type RuntimeHandle,
  RuntimeStatus,
  type StatusEvent,
} from "./types.js";

/** What a backend returns once its sandbox runs an action server. */
export interface ProvisionedSandbox {
  /** Backend's id for the sandbox (process id, Modal sandbox id...). */
  sandboxId: string;
  /** Base URL of the action server. */
  url: string;
  /** The session API key the server was started with. */
  sessionApiKey: string;
  /** Unix socket of the server, when it listens on one (the `url` then only names the Host). */
  socketPath?: string;
  /** Extra CA to trust for an https `url` (e.g. modal-emulator's). */
  caCertPem?: string;
  /** Base URL of the VS Code server, when there is one. */
  vscodeBaseUrl?: string;
  /** The sandbox's working directory (VS Code `folder`). @default "/workspace" */
  workspaceDir?: string;
  /** Backend-specific fields kept in the handle. */
  data?: Record<string, unknown>;
}

/** What {@link BaseRuntime.provision} receives. */
export interface ProvisionRequest {
  /** The cost lease reserved for this sandbox (put it in the sandbox's tags). */
  leaseId?: string;
  /** Secrets to inject as the sandbox's environment. */
  secrets?: ResolvedSecrets;
  signal?: AbortSignal;
}

/** Construction parameters of {@link BaseRuntime}. */
export interface BaseRuntimeInit {
  backend: string;
  sessionId: string;
  capabilities: RuntimeCapabilities;
  context: PluginContext;
  /** Readiness deadline of the action server, in ms. */
  startupTimeoutMs: number;
  /** Keep the sandbox running on close (it can be re-attached with the handle). @default false */
  keepAlive?: boolean;
  /** Re-attach to this sandbox instead of creating one. */
  attachTo?: RuntimeHandle;
  /** Who the cost lease is charged to. */
  costScope?: CostScope;
  /**
   * The session's overrides as the provider accepted them: kept in the handle (`data.overrides`, restored on
   * attach), `labels` exposed as {@link BaseRuntime.labels}, `userId` added to the cost scope.
   */
  overrides?: ResolvedSessionOverrides;
  /** Lifetime the cost lease covers, in ms. @default 3600000 */
  lifetimeMs?: number;
  /** Hard timeout for actions without one, in ms. @default 120000 */
  defaultActionTimeoutMs?: number;
}

const HEARTBEAT_EVERY_MS = 5_000;

function combineRedactors(a: Redactor, b: Redactor | undefined): Redactor {
  if (!b || b.isEmpty) return a;
  if (a.isEmpty) return b;
  return {
    isEmpty: false,
    redact: (t) => b.redact(a.redact(t)),
    redactDeep: (v) => b.redactDeep(a.redactDeep(v)),
  };
}

/**
 * The shared implementation of {@link Runtime} over the action-server protocol. A backend only provisions,
 * re-attaches and destroys a sandbox that serves the protocol; everything about actions, readiness, status
 * events, redaction, cost leases and idempotent close lives here.
 */
export abstract class BaseRuntime implements Runtime {
  readonly backend: string;
  #sessionId: string;
  readonly capabilities: RuntimeCapabilities;
  protected readonly context: PluginContext;
  protected readonly logger: Logger;
  protected readonly init: BaseRuntimeInit;
  #status: RuntimeStatus = RuntimeStatus.STOPPED;
  #listeners = new Set<(e: StatusEvent) => void>();
  #client: ActionExecutionClient | undefined;
  #sandbox: ProvisionedSandbox | undefined;
  #lease: LeaseInfo | undefined;
  #redactor: Redactor;
  #connecting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #disconnected: string | undefined;
  #lastHeartbeat = 0;
  #unregisterTerminate: (() => void) | undefined;
  #overrides: ResolvedSessionOverrides;

  constructor(init: BaseRuntimeInit) {
    this.init = init;
    this.backend = init.backend;
    this.#sessionId = init.sessionId;
    const stored = init.attachTo?.data.overrides;
    this.#overrides = Object.freeze({
      ...(typeof stored === "object" && stored !== null ? (stored as ResolvedSessionOverrides) : {}),
      ...init.overrides,
    });
    this.capabilities = Object.freeze({ ...init.capabilities });
    this.context = init.context;
    this.logger = init.context.logger;
    this.#redactor = init.context.redactor;
  }

  /** Starts the sandbox (or verifies the attached one) and returns where its action server listens. */
  protected abstract provision(request: ProvisionRequest): Promise<ProvisionedSandbox>;
  /** Stops the sandbox and frees everything it holds. Must tolerate a sandbox that is already gone. */
  protected abstract destroy(sandbox: ProvisionedSandbox, reason: string): Promise<void>;
  /** What the sandbox costs, for the cost lease; undefined means free (no lease). */
  protected costSpec(): SandboxCostSpec | undefined {
    return undefined;
  }
  /**
   * Re-attaches to the sandbox in `handle`: verify it is alive, else throw NOT_FOUND. The default checks
   * `/alive` at the handle's URL with the handle's key.
   */
  protected async reattach(handle: RuntimeHandle): Promise<ProvisionedSandbox> {
    const socketPath = typeof handle.data.socketPath === "string" ? handle.data.socketPath : undefined;
    const caCertPem = typeof handle.data.caCertPem === "string" ? handle.data.caCertPem : undefined;
    const client = new ActionExecutionClient({
      baseUrl: handle.url,
      sessionApiKey: handle.sessionApiKey,
      ...(caCertPem ? { caCertPem } : {}),
      ...(socketPath ? { socketPath } : {}),
    });
    try {
      await client.alive({ timeoutMs: 3000 });
    } catch (cause) {
      throw new RuntimeError(
        "NOT_FOUND",
        `The ${handle.backend} sandbox of session ${handle.sessionId} is not running any more; create a new runtime.`,
        { cause },
      );
    } finally {
      client.close();
    }
    return {
      sandboxId: String(handle.data.sandboxId ?? ""),
      url: handle.url,
      sessionApiKey: handle.sessionApiKey,
      data: handle.data,
      ...(caCertPem ? { caCertPem } : {}),
      ...(socketPath ? { socketPath } : {}),
      ...(typeof handle.data.vscodeBaseUrl === "string" ? { vscodeBaseUrl: handle.data.vscodeBaseUrl } : {}),
      ...(typeof handle.data.workspaceDir === "string" ? { workspaceDir: handle.data.workspaceDir } : {}),
    };
  }
  /**
   * Called by `close()` when the sandbox is kept alive: stop watchers and timers that belong to this object
   * (the sandbox itself keeps running for a later `attach`). The default does nothing.
   */
  protected release(): void {}
  /** A backend reports here that its sandbox is known dead (e.g. the child process exited), or undefined. */
  protected deathReason(): string | undefined {
    return undefined;
  }
  /**
   * Called when `connect()` fails, before the ERROR status is emitted and the sandbox is torn down: a backend
   * adds what it knows about the failed start to the error (runtime-modal adds the sandbox's last output lines
   * to the message and `details.output`). Whatever it adds must already be redacted with {@link redactor}.
   * The default returns the error unchanged.
   */
  protected explainStartFailure(error: RuntimeError): Promise<RuntimeError> | RuntimeError {
    return error;
  }

  get sessionId(): string {
    return this.#sessionId;
  }

  /**
   * Hands a ready, pooled sandbox to a session: warm pools create runtimes ahead of time under a pool id and
   * re-bind them when acquired. Only valid while no action has run for another session.
   */
  rebind(sessionId: string, overrides?: ResolvedSessionOverrides): void {
    this.#sessionId = sessionId;
    // Only what does not shape the sandbox can change here (labels): providers bypass the pool otherwise.
    if (overrides) this.#overrides = Object.freeze({ ...overrides });
  }

  get status(): RuntimeStatus {
    return this.#status;
  }

  /** The session's overrides (from `create`, or from the handle after `attach`); `{}` when none. */
  get overrides(): ResolvedSessionOverrides {
    return this.#overrides;
  }

  /** The session's labels (`overrides.labels`); `{}` when none. */
  get labels(): Readonly<Record<string, string>> {
    return this.#overrides.labels ?? {};
  }

  /** The redactor applied to observations, status messages and errors of this runtime. */
  get redactor(): Redactor {
    return this.#redactor;
  }

  /** The provisioned sandbox, once connected. */
  protected get sandbox(): ProvisionedSandbox | undefined {
    return this.#sandbox;
  }

  /** The cost lease, once reserved. */
  get lease(): LeaseInfo | undefined {
    return this.#lease;
  }

  onStatus(listener: (event: StatusEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  protected emitStatus(status: RuntimeStatus, message = "", level: StatusEvent["level"] = "info"): void {
    this.#status = status;
    const event: StatusEvent = { status, level, message: this.#redactor.redact(message), at: Date.now() };
    (level === "error" ? this.logger.warn : this.logger.debug).call(this.logger, `runtime status ${status}`, {
      backend: this.backend,
      sessionId: this.sessionId,
      ...(event.message ? { detail: event.message } : {}),
    });
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.logger.warn("status listener threw", { error: this.#redactor.redact(String(err)) });
      }
    }
  }

  /**
   * Tells the runtime its sandbox is gone: status ERROR_RUNTIME_DISCONNECTED and every later call fails
   * with DISCONNECTED at once.
   */
  protected markDisconnected(reason: string): void {
    if (this.#disconnected || this.#closing) return;
    this.#disconnected = reason;
    this.emitStatus(RuntimeStatus.ERROR_RUNTIME_DISCONNECTED, reason, "error");
  }

  connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closing) {
      return Promise.reject(
        new RuntimeError("FAILED_PRECONDITION", "This runtime is closed; create a new one."),
      );
    }
    this.#connecting ??= this.#connect(options.signal).catch((err: unknown) => {
      this.#connecting = undefined;
      throw err;
    });
    return this.#connecting;
  }

  async #connect(signal?: AbortSignal): Promise<void> {
    const attach = this.init.attachTo;
    let sandbox: ProvisionedSandbox | undefined;
    try {
      if (attach) {
        if (attach.backend !== this.backend) {
          throw new RuntimeError(
            "INVALID_ARGUMENT",
            `handle.backend: this handle belongs to the "${attach.backend}" backend, not "${this.backend}"`,
          );
        }
        this.emitStatus(RuntimeStatus.STARTING_RUNTIME, "re-attaching");
        sandbox = await this.reattach(attach);
        const leaseId = attach.data.leaseId;
        if (typeof leaseId === "string")
          this.#lease = {
            leaseId,
            reservedUsd: Number(attach.data.reservedUsd ?? 0),
            lifetimeMs: Number(attach.data.lifetimeMs ?? 0),
          };
      } else {
        const spec = this.costSpec();
        if (spec && this.context.cost) {
          this.#lease = await this.context.cost.reserve({
            spec,
            scope: {
              sessionId: this.sessionId,
              ...(this.#overrides.userId !== undefined ? { userId: this.#overrides.userId } : {}),
              ...this.init.costScope,
            },
            lifetimeMs: this.init.lifetimeMs ?? 3_600_000,
          });
        }
        let secrets: ResolvedSecrets | undefined;
        if (this.context.secrets) {
          secrets = await this.context.secrets.resolve({ sessionId: this.sessionId });
          this.#redactor = combineRedactors(this.context.redactor, secrets.redactor);
          this.#pendingSecretFiles = secrets.files;
        }
        this.emitStatus(RuntimeStatus.STARTING_RUNTIME);
        sandbox = await this.provision({
          ...(this.#lease ? { leaseId: this.#lease.leaseId } : {}),
          ...(secrets ? { secrets } : {}),
          ...(signal ? { signal } : {}),
        });
        this.#sandbox = sandbox;
        this.emitStatus(RuntimeStatus.RUNTIME_STARTED);
        if (this.#lease && this.context.cost)
          await this.context.cost.activate(this.#lease.leaseId, sandbox.sandboxId);
        if (this.#lease && this.context.cost?.onTerminate) {
          this.#unregisterTerminate = this.context.cost.onTerminate(this.#lease.leaseId, async (reason) => {
            this.logger.warn("cost guard stops this sandbox", { sessionId: this.sessionId, reason });
            this.emitStatus(RuntimeStatus.BUDGET_EXCEEDED, reason, "error");
            await this.close();
          });
        }
      }
      this.#sandbox = sandbox;
      this.#client = new ActionExecutionClient({
        baseUrl: sandbox.url,
        sessionApiKey: sandbox.sessionApiKey,
        logger: this.logger,
        ...(sandbox.caCertPem ? { caCertPem: sandbox.caCertPem } : {}),
        ...(sandbox.socketPath ? { socketPath: sandbox.socketPath } : {}),
        ...(this.init.defaultActionTimeoutMs
          ? { defaultActionTimeoutMs: this.init.defaultActionTimeoutMs }
          : {}),
      });
      await this.#client.waitUntilAlive({
        deadlineMs: attach ? Math.min(this.init.startupTimeoutMs, 10_000) : this.init.startupTimeoutMs,
        ...(signal ? { signal } : {}),
        isDead: () => this.deathReason(),
      });
      if (!attach) {
        // Provisioning, not an action: the public methods require READY, and READY means the files are there.
        const files = this.#pendingSecretFiles;
        this.#pendingSecretFiles = undefined;
        await provisionSecretFiles(this.#client, files, signal ? { signal } : {});
      }
      this.emitStatus(RuntimeStatus.READY);
    } catch (err) {
      let error = this.#redactError(err);
      try {
        error = await this.explainStartFailure(error);
      } catch (explainErr) {
        this.logger.debug("explaining a failed start failed", { error: String(explainErr) });
      }
      this.emitStatus(
        isRuntimeError(error, "BUDGET_EXCEEDED") ? RuntimeStatus.BUDGET_EXCEEDED : RuntimeStatus.ERROR,
        error.message,
        "error",
      );
      // A failure at any step leaves nothing behind: stop what was created, settle the lease.
      if (!attach) await this.#teardown("connect failed");
      else {
        this.#client?.close();
        this.#client = undefined;
        this.#sandbox = undefined;
      }
      throw error;
    }
  }

  /** Secret files (git credentials...) to write while provisioning, before READY. */
  #pendingSecretFiles: ResolvedSecrets["files"] | undefined;

  #redactError(err: unknown): RuntimeError {
    const e = toRuntimeError(err);
    const message = this.#redactor.redact(e.message);
    if (message === e.message) return e;
    return new RuntimeError(e.code, message, {
      ...(e.details ? { details: this.#redactor.redactDeep(e.details) } : {}),
    });
  }

  #requireClient(): ActionExecutionClient {
    if (this.#closing)
      throw new RuntimeError("FAILED_PRECONDITION", "This runtime is closed; create a new one.");
    if (this.#disconnected) {
      throw new RuntimeError(
        "DISCONNECTED",
        `The ${this.backend} sandbox is gone (${this.#disconnected}); create a new runtime.`,
      );
    }
    if (!this.#client || this.#status !== RuntimeStatus.READY) {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "The runtime is not connected; call connect() first and wait for it.",
      );
    }
    return this.#client;
  }

  /** Wraps a client call: maps disconnects to status, redacts errors. */
  async #call<T>(fn: (client: ActionExecutionClient) => Promise<T>): Promise<T> {
    const client = this.#requireClient();
    try {
      return await fn(client);
    } catch (err) {
      const dead = this.#disconnected ?? this.deathReason();
      if (dead || isRuntimeError(err, "DISCONNECTED")) {
        this.markDisconnected(dead ?? (err as Error).message);
        throw new RuntimeError(
          "DISCONNECTED",
          `The ${this.backend} sandbox is gone (${this.#redactor.redact(dead ?? (err as Error).message)}); create a new runtime.`,
          { cause: err },
        );
      }
      throw this.#redactError(err);
    } finally {
      this.#heartbeat();
    }
  }

  #heartbeat(): void {
    const lease = this.#lease;
    if (!lease || !this.context.cost || this.#closing) return;
    const now = Date.now();
    if (now - this.#lastHeartbeat < HEARTBEAT_EVERY_MS) return;
    this.#lastHeartbeat = now;
    this.context.cost.heartbeat(lease.leaseId).catch((err: unknown) => {
      this.logger.warn("cost lease heartbeat failed", { leaseId: lease.leaseId, error: String(err) });
    });
  }

  #checkCapabilities(action: Action): void {
    const need = (cap: keyof RuntimeCapabilities, what: string) => {
      if (!this.capabilities[cap]) {
        throw new RuntimeError(
          "UNSUPPORTED",
          `The ${this.backend} backend does not support ${what} (capability "${cap}" is off).`,
        );
      }
    };
    if (action.action === "run_ipython") need("ipython", "run_ipython");
    if (action.action === "run" && action.args.is_input) need("stdin", "input to a running command");
    if (action.action === "call_tool_mcp") {
      throw new RuntimeError(
        "UNSUPPORTED",
        "call_tool_mcp actions run on the host, not in the sandbox; call your MCP client directly.",
      );
    }
  }

  async run(action: Action | ActionInput, options: RunOptions = {}): Promise<Observation> {
    const parsed = parseAction(action);
    this.#checkCapabilities(parsed);
    const obs = await this.#call((c) =>
      c.executeAction(parsed, options.signal ? { signal: options.signal } : {}),
    );
    return this.#redactor.redactDeep(obs);
  }

  async runCommand(
    command: string,
    options: CmdRunOptions = {},
  ): Promise<CmdOutputObservation | ErrorObservation> {
    const obs = await this.run(cmdRun(command, options));
    if (obs.observation !== "run" && obs.observation !== "error") {
      throw new RuntimeError("INTERNAL", `Expected a run observation, got ${obs.observation}`);
    }
    return obs;
  }

  #throwFileError(obs: Observation, path: string): never {
    const errorId = obs.observation === "error" ? obs.extras.error_id : "";
    const byId: Record<string, RuntimeError["code"]> = {
      [FileErrorId.NOT_FOUND]: "NOT_FOUND",
      [FileErrorId.BINARY]: "INVALID_ARGUMENT",
      [FileErrorId.IS_DIRECTORY]: "INVALID_ARGUMENT",
      [FileErrorId.DECODE]: "INVALID_ARGUMENT",
      [FileErrorId.PERMISSION]: "UNAUTHORIZED",
      [FileErrorId.IO]: "INTERNAL",
      [FileErrorId.NOT_A_REGULAR_FILE]: "INVALID_ARGUMENT",
      [FileErrorId.INVALID_PATH]: "INVALID_ARGUMENT",
      [FileErrorId.TOO_LARGE]: "INVALID_ARGUMENT",
    };
    const code = byId[errorId] ?? "INVALID_ARGUMENT";
    const redact = (text: string) => this.#redactor.redact(text);
    throw new RuntimeError(code, redact(`${path}: ${obs.content}`), {
      details: { errorId, path: redact(path) },
    });
  }

  async readFile(path: string, options: { start?: number; end?: number } = {}): Promise<string> {
    const obs = await this.run(fileRead(path, options));
    if (obs.observation !== "read") this.#throwFileError(obs, path);
    return obs.content;
  }

  async writeFile(path: string, content: string): Promise<void> {
    const obs = await this.run(fileWrite(path, content));
    if (obs.observation !== "write") this.#throwFileError(obs, path);
  }

  async edit(path: string, request: EditRequest): Promise<FileEditObservation> {
    const obs = await this.run(fileEdit(path, request));
    if (obs.observation !== "edit") this.#throwFileError(obs, path);
    // The editor's protocol: errors come back as an edit observation whose content starts with "ERROR:".
    if (obs.content.startsWith("ERROR:")) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        this.#redactor.redact(`edit ${request.command} ${path}: ${obs.content.slice(6).trim()}`),
        {
          details: { path: this.#redactor.redact(path), command: request.command },
        },
      );
    }
    return obs;
  }

  listFiles(path?: string): Promise<string[]> {
    return this.#call((c) => c.listFiles(path));
  }

  async upload(localPath: string, sandboxDir: string): Promise<void> {
    if (!this.capabilities.fileTransfer)
      throw new RuntimeError("UNSUPPORTED", `The ${this.backend} backend does not support file transfer.`);
    if (!sandboxDir.startsWith("/")) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `sandboxDir: must be an absolute path inside the sandbox, got ${JSON.stringify(sandboxDir)}`,
      );
    }
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(localPath);
    } catch (cause) {
      throw new RuntimeError("NOT_FOUND", `localPath: ${localPath} does not exist on the host`, { cause });
    }
    if (info.isDirectory()) {
      const entries: ZipEntry[] = [];
      const root = localPath.replace(/\/+$/, "");
      const parent = join(root, "..");
      const walk = async (dir: string) => {
        const items = await readdir(dir, { withFileTypes: true });
        entries.push({ path: `${relative(parent, dir)}/`, data: new Uint8Array() });
        for (const item of items) {
          const full = join(dir, item.name);
          if (item.isDirectory()) await walk(full);
          else if (item.isFile())
            entries.push({
              path: relative(parent, full),
              data: await readFile(full),
              mode: (await stat(full)).mode,
            });
        }
      };
      await walk(root);
      const zip = createZip(entries);
      await this.#call((c) => c.uploadFile(zip, `${basename(root)}.zip`, sandboxDir, true));
    } else {
      const data = await readFile(localPath);
      await this.#call((c) => c.uploadFile(data, basename(localPath), sandboxDir, false));
    }
  }

  download(sandboxPath: string): Promise<Uint8Array> {
    if (!this.capabilities.fileTransfer)
      return Promise.reject(
        new RuntimeError("UNSUPPORTED", `The ${this.backend} backend does not support file transfer.`),
      );
    return this.#call((c) => c.downloadFiles(sandboxPath));
  }

  async downloadTo(
    sandboxPath: string,
    destination: string | Writable,
    options: DownloadToOptions = {},
  ): Promise<{ bytes: number }> {
    if (!this.capabilities.fileTransfer)
      throw new RuntimeError("UNSUPPORTED", `The ${this.backend} backend does not support file transfer.`);
    const streamOptions = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    };
    if (typeof destination !== "string")
      return { bytes: await this.#call((c) => c.downloadFilesTo(sandboxPath, destination, streamOptions)) };
    // Fail before creating anything on the host when the runtime cannot answer.
    this.#requireClient();
    const target = resolvePath(destination);
    const existing = await stat(target).catch(() => undefined);
    if (existing?.isDirectory())
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `destination: ${target} is a directory; pass the path of the zip file to write, e.g. ${join(target, "download.zip")}`,
      );
    // Written next to the target and renamed when complete: a failed download never leaves a partial file.
    const partial = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString("hex")}.partial`);
    let handle: FileHandle;
    try {
      handle = await open(partial, "wx", 0o600);
    } catch (cause) {
      throw new RuntimeError(
        (cause as NodeJS.ErrnoException).code === "ENOENT" ? "NOT_FOUND" : "INVALID_ARGUMENT",
        `destination: cannot create a file in ${dirname(target)} on the host (${(cause as Error).message})`,
        { cause },
      );
    }
    try {
      const bytes = await this.#call((c) =>
        c.downloadFilesTo(sandboxPath, handle.createWriteStream({ highWaterMark: 1 << 20 }), streamOptions),
      );
      await rename(partial, target);
      return { bytes };
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  async vscodeUrl(): Promise<string | null> {
    if (!this.capabilities.vscode) return null;
    const base = this.#sandbox?.vscodeBaseUrl;
    if (!base) return null;
    const token = await this.#call((c) => c.vscodeConnectionToken());
    if (!token) return null;
    const folder = this.#sandbox?.workspaceDir ?? "/workspace";
    return `${base.replace(/\/$/, "")}/?tkn=${encodeURIComponent(token)}&folder=${encodeURIComponent(folder)}`;
  }

  handle(): RuntimeHandle {
    const sandbox = this.#sandbox;
    if (!sandbox)
      throw new RuntimeError("FAILED_PRECONDITION", "No sandbox yet: call connect() before handle().");
    return {
      version: 1,
      backend: this.backend,
      sessionId: this.sessionId,
      url: sandbox.url,
      sessionApiKey: sandbox.sessionApiKey,
      data: {
        ...sandbox.data,
        sandboxId: sandbox.sandboxId,
        ...(sandbox.caCertPem ? { caCertPem: sandbox.caCertPem } : {}),
        ...(sandbox.socketPath ? { socketPath: sandbox.socketPath } : {}),
        ...(sandbox.vscodeBaseUrl ? { vscodeBaseUrl: sandbox.vscodeBaseUrl } : {}),
        ...(sandbox.workspaceDir ? { workspaceDir: sandbox.workspaceDir } : {}),
        ...(Object.keys(this.#overrides).length > 0 ? { overrides: this.#overrides } : {}),
        ...(this.#lease
          ? {
              leaseId: this.#lease.leaseId,
              reservedUsd: this.#lease.reservedUsd,
              lifetimeMs: this.#lease.lifetimeMs,
            }
          : {}),
      },
    };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#connecting) await this.#connecting.catch(() => undefined);
      if (this.init.keepAlive && this.#sandbox && !this.#disconnected) {
        // This object stops acting for the sandbox: the cost guard must use its inventory to stop it now.
        this.#unregisterTerminate?.();
        this.#unregisterTerminate = undefined;
        this.release();
        this.#client?.close();
        this.logger.info("runtime closed; sandbox kept alive", {
          backend: this.backend,
          sessionId: this.sessionId,
        });
      } else {
        await this.#teardown("closed");
      }
      this.emitStatus(RuntimeStatus.STOPPED);
    })();
    return this.#closing;
  }

  async #teardown(reason: string): Promise<void> {
    this.#unregisterTerminate?.();
    this.#unregisterTerminate = undefined;
    const sandbox = this.#sandbox;
    this.#client?.close();
    this.#client = undefined;
    this.#sandbox = undefined;
    if (sandbox) {
      try {
        await this.destroy(sandbox, reason);
      } catch (err) {
        this.logger.warn("destroying the sandbox failed", {
          backend: this.backend,
          sandboxId: sandbox.sandboxId,
          error: this.#redactor.redact(String(err)),
        });
      }
    }
    const lease = this.#lease;
    if (lease && this.context.cost) {
      this.#lease = undefined;
      try {
        await this.context.cost.settle(lease.leaseId, { reason });
      } catch (err) {
        this.logger.warn("settling the cost lease failed", { leaseId: lease.leaseId, error: String(err) });
      }
    }
  }

  toJSON(): Record<string, unknown> {
    return { backend: this.backend, sessionId: this.sessionId, status: this.#status };
  }

  [inspect.custom](): string {
    return `${this.constructor.name} ${JSON.stringify(this.toJSON())}`;
  }
}
