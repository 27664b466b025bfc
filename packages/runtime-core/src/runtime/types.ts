import type { Writable } from "node:stream";
import type { SandboxInventory } from "../inventory.js";
import type { Action, ActionInput } from "../protocol/actions.js";
import type { CmdRunOptions, EditRequest } from "../protocol/codec.js";
import type {
  CmdOutputObservation,
  ErrorObservation,
  FileEditObservation,
  Observation,
} from "../protocol/observations.js";
import type { CreateRuntimeInput, SessionOverrideField } from "./overrides.js";

/** Runtime status values (OpenHands `RuntimeStatus`, same strings on the wire). */
export const RuntimeStatus = {
  STOPPED: "STATUS$STOPPED",
  BUILDING_RUNTIME: "STATUS$BUILDING_RUNTIME",
  STARTING_RUNTIME: "STATUS$STARTING_RUNTIME",
  RUNTIME_STARTED: "STATUS$RUNTIME_STARTED",
  SETTING_UP_WORKSPACE: "STATUS$SETTING_UP_WORKSPACE",
  SETTING_UP_GIT_HOOKS: "STATUS$SETTING_UP_GIT_HOOKS",
  READY: "STATUS$READY",
  ERROR: "STATUS$ERROR",
  ERROR_RUNTIME_DISCONNECTED: "STATUS$ERROR_RUNTIME_DISCONNECTED",
  ERROR_MEMORY: "STATUS$ERROR_MEMORY",
  BUDGET_EXCEEDED: "STATUS$BUDGET_EXCEEDED",
} as const;
export type RuntimeStatus = (typeof RuntimeStatus)[keyof typeof RuntimeStatus];

/** A status change, as delivered to {@link Runtime.onStatus} listeners. Secret-free. */
export interface StatusEvent {
  status: RuntimeStatus;
  level: "info" | "warn" | "error";
  message: string;
  /** Epoch ms. */
  at: number;
}

/**
 * What a backend can do, declared up front. Core raises UNSUPPORTED before calling a backend
 * that lacks a capability; the conformance kit skips (never passes) the matching tests.
 */
export interface RuntimeCapabilities {
  /** One shell whose cwd, env, functions persist between commands. */
  persistentShell: boolean;
  /** `is_input` and keys (C-c...) reach a running command. */
  stdin: boolean;
  /** `run_ipython` works. */
  ipython: boolean;
  /** GPUs can be requested. */
  gpu: boolean;
  /** The sandbox can be paused and resumed. */
  pause: boolean;
  /** `handle()` + `attach()` survive a host restart. */
  attach: boolean;
  /** Ports are exposed through public tunnels. */
  tunnels: boolean;
  /** A VS Code server URL is available. */
  vscode: boolean;
  /** Upload and download of files and directories. */
  fileTransfer: boolean;
  /** Network can be cut off from the sandbox. */
  networkIsolation: boolean;
}

/** A JSON value that lets a restarted host re-attach to a live sandbox. Holds a credential: store it safely. */
export interface RuntimeHandle {
  /** Handle format version. */
  version: 1;
  /** Backend name (`local`, `modal`, ...). */
  backend: string;
  /** The session id the runtime was created for. */
  sessionId: string;
  /** Base URL of the action server. */
  url: string;
  /** The session API key (a credential). */
  sessionApiKey: string;
  /** Backend-specific fields (sandbox id, pid, lease id...). */
  data: Record<string, unknown>;
}

/** Options of {@link Runtime.downloadTo}. */
export interface DownloadToOptions {
  /** Stops the download; the destination is then destroyed (a path: removed). */
  signal?: AbortSignal;
  /** Longest wait for the next byte from the sandbox, in ms. @default 300000 */
  idleTimeoutMs?: number;
}

/** Options of {@link Runtime.run}. */
export interface RunOptions {
  /** Abort waiting for the observation (the action itself may still finish in the sandbox). */
  signal?: AbortSignal;
  /**
   * Follow a `run` action live: called with each new piece of the command's output as the sandbox prints it,
   * redacted like observations (a secret split across pieces is still caught, see `redactionStream`), before
   * the promise resolves with the observation. The pieces are a live view: the observation's `content` stays
   * the authoritative output (cut to 30,000 characters as documented; the pieces are not cut, and output
   * printed before the action began is only in the observation). Other actions, and servers without the
   * streaming form (OpenHands' own), produce no pieces.
   */
  onOutput?: (text: string) => void;
}

/**
 * The interface host code programs against, whatever the backend.
 *
 * @example
 * ```ts
 * const runtime = await plugin.create({ sessionId: "s1" });
 * await runtime.connect();
 * const obs = await runtime.runCommand("ls -la");
 * await runtime.close();
 * ```
 */
export interface Runtime {
  /** Backend name. */
  readonly backend: string;
  /** Session id. */
  readonly sessionId: string;
  /** What this backend supports. */
  readonly capabilities: RuntimeCapabilities;
  /** Current status. */
  readonly status: RuntimeStatus;
  /** Subscribes to status changes; returns an unsubscribe function. */
  onStatus(listener: (event: StatusEvent) => void): () => void;
  /** Starts (or attaches to) the sandbox and waits until its server is ready. */
  connect(options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Runs one action; actions run one at a time in call order. Observations are redacted. A typed action (from a
   * builder such as `cmdRun`, or from `parseAction`) is not parsed again; a plain object is validated once
   * (INVALID_ARGUMENT naming each path).
   */
  run(action: Action | ActionInput, options?: RunOptions): Promise<Observation>;
  /** Runs a shell command in the persistent shell. */
  runCommand(command: string, options?: CmdRunOptions): Promise<CmdOutputObservation | ErrorObservation>;
  /** Reads a text file; throws NOT_FOUND, INVALID_ARGUMENT (binary or directory). */
  readFile(path: string, options?: { start?: number; end?: number }): Promise<string>;
  /** Writes a text file (parents created). */
  writeFile(path: string, content: string): Promise<void>;
  /** str_replace_editor commands; editor errors throw INVALID_ARGUMENT with the editor's message. */
  edit(path: string, request: EditRequest): Promise<FileEditObservation>;
  /** Lists a directory: directories first with a trailing `/`. */
  listFiles(path?: string): Promise<string[]>;
  /** Uploads a local file or directory to an absolute sandbox directory. */
  upload(localPath: string, sandboxDir: string): Promise<void>;
  /**
   * Downloads a sandbox path as zip bytes (entries relative to the path). Holds the whole zip in memory
   * (about twice its size at the peak): for large files use {@link Runtime.downloadTo}.
   */
  download(sandboxPath: string): Promise<Uint8Array>;
  /**
   * Streams the same zip as {@link Runtime.download} to a host file path or a writable stream, with memory
   * bounded by stream buffers whatever the size. A path is written to a temporary file next to it and renamed
   * when complete (a failure leaves nothing); a stream is ended when the zip is complete (destroyed on
   * failure), as `stream.pipeline` does. Resolves with the number of bytes written.
   *
   * @example
   * ```ts
   * await runtime.downloadTo("/workspace/model.bin", "./model.zip");
   * await runtime.downloadTo("/workspace/logs", createWriteStream("logs.zip"));
   * ```
   */
  downloadTo(
    sandboxPath: string,
    destination: string | Writable,
    options?: DownloadToOptions,
  ): Promise<{ bytes: number }>;
  /** VS Code URL with its token, or null when not available. */
  vscodeUrl(): Promise<string | null>;
  /** A JSON-serializable handle to re-attach after a host restart. */
  handle(): RuntimeHandle;
  /** Stops the sandbox (unless kept alive) and releases everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * What a runtime plugin creates: a factory of runtimes for one backend configuration, with its warm pool.
 * Hosts program against this and {@link Runtime}, whatever the backend.
 */
export interface RuntimeProvider {
  /** Backend name. */
  readonly backend: string;
  /** What the runtimes of this provider support. */
  readonly capabilities: RuntimeCapabilities;
  /**
   * Override fields this provider honours per session besides `labels` and `userId` (which every provider
   * takes); a create that sets another field fails with UNSUPPORTED naming it. Absent: none.
   */
  readonly supportedOverrides?: readonly SessionOverrideField[];
  /**
   * The backend's sandboxes, labelled with their cost lease (runtime-modal, runtime-docker): what a cost plugin's
   * `sweepOrphans` reconciles leases with. Absent: the backend keeps no inventory.
   */
  readonly inventory?: SandboxInventory;
  /**
   * A runtime for `input.sessionId`, shaped by its per-session overrides over the provider's options.
   * Throws INVALID_ARGUMENT (every issue as `path: message`) and UNSUPPORTED (a field this backend cannot set).
   * From a warm pool it is already connected (then `connect()` is a no-op); a create whose overrides differ from
   * the pool's shape (or that names a `userId`) gets a fresh sandbox instead.
   */
  create(input: CreateRuntimeInput): Promise<Runtime>;
  /** Re-attaches to a live sandbox from its handle; `connect()` then fails with NOT_FOUND if it is gone. */
  attach(handle: RuntimeHandle): Promise<Runtime>;
  /** Drains the warm pool and stops what the provider started (not runtimes handed out). Idempotent. */
  close(): Promise<void>;
}
