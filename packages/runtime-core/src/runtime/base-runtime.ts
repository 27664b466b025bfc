import type { Writable } from "node:stream";
import { RuntimeError } from "../errors.js";
import type { Action, ActionInput } from "../protocol/actions.js";
import {
  type CmdRunOptions,
  cmdRun,
  type EditRequest,
  fileEdit,
  fileRead,
  fileWrite,
  toAction,
} from "../protocol/codec.js";
import type {
  CmdOutputObservation,
  ErrorObservation,
  FileEditObservation,
  Observation,
} from "../protocol/observations.js";
import { checkActionCapabilities, requireCapability } from "./capabilities.js";
import { downloadToFile } from "./download-file.js";
import { editRefusal, fileActionError } from "./file-errors.js";
import { redactionStream } from "./redaction.js";
import { RuntimeLifecycle } from "./runtime-lifecycle.js";
import type { DownloadToOptions, RunOptions, Runtime } from "./types.js";
import { assertSandboxDir, readUploadPayload } from "./upload.js";

export type { BaseRuntimeInit, ProvisionedSandbox, ProvisionRequest } from "./backend-contract.js";

/**
 * The shared implementation of {@link Runtime} over the action-server protocol. A backend only provisions,
 * re-attaches and destroys a sandbox that serves the protocol (`provision`, `reattach`, `destroy`, and
 * `costSpec` for its lease); everything else is shared. This class is the action path: it checks capabilities,
 * sends typed actions through the client (one queue, one in flight) and redacts what comes back. The lifecycle
 * (connect, status, the cost lease, the handle, close) is its base class, `RuntimeLifecycle`; upload zipping,
 * download files and file-error mapping are modules of their own next to it.
 *
 * @example
 * ```ts
 * class MyRuntime extends BaseRuntime {
 *   protected async provision(request: ProvisionRequest) { ...start a sandbox serving the protocol... }
 *   protected async destroy(sandbox: ProvisionedSandbox) { ...stop it... }
 * }
 * ```
 */
export abstract class BaseRuntime extends RuntimeLifecycle implements Runtime {
  /**
   * Runs one action. A typed action (from a builder such as `cmdRun`, or from `parseAction`) is sent as it is;
   * a plain object is validated here, once (INVALID_ARGUMENT naming each path), since it comes from a user.
   */
  async run(action: Action | ActionInput, options: RunOptions = {}): Promise<Observation> {
    const typed = toAction(action);
    checkActionCapabilities(typed, this.capabilities, this.backend);
    const { onOutput } = options;
    if (!onOutput) {
      const obs = await this.callServer((c) =>
        c.executeAction(typed, options.signal ? { signal: options.signal } : {}),
      );
      return this.redactor.redactDeep(obs);
    }
    // Pieces pass the same redactor as observations, as a stream: a secret split across pieces is caught.
    const stream = redactionStream(this.redactor);
    const emit = (text: string) => {
      if (!text) return;
      try {
        onOutput(text);
      } catch {
        // The caller's listener failing must not fail the action (the client logs the first such error).
      }
    };
    const obs = await this.callServer((c) =>
      c.executeAction(typed, {
        ...(options.signal ? { signal: options.signal } : {}),
        onOutput: (text) => emit(stream.write(text)),
      }),
    );
    emit(stream.flush());
    return this.redactor.redactDeep(obs);
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

  async readFile(path: string, options: { start?: number; end?: number } = {}): Promise<string> {
    const obs = await this.run(fileRead(path, options));
    if (obs.observation !== "read") throw fileActionError(obs, path, this.redactor);
    return obs.content;
  }

  async writeFile(path: string, content: string): Promise<void> {
    const obs = await this.run(fileWrite(path, content));
    if (obs.observation !== "write") throw fileActionError(obs, path, this.redactor);
  }

  async edit(path: string, request: EditRequest): Promise<FileEditObservation> {
    const obs = await this.run(fileEdit(path, request));
    if (obs.observation !== "edit") throw fileActionError(obs, path, this.redactor);
    const refused = editRefusal(obs.content, path, request.command, this.redactor);
    if (refused) throw refused;
    return obs;
  }

  listFiles(path?: string): Promise<string[]> {
    return this.callServer((c) => c.listFiles(path));
  }

  async upload(localPath: string, sandboxDir: string): Promise<void> {
    requireCapability(this.capabilities, "fileTransfer", this.backend, "file transfer");
    assertSandboxDir(sandboxDir);
    const payload = await readUploadPayload(localPath);
    await this.callServer((c) =>
      c.uploadFile(payload.content, payload.filename, sandboxDir, payload.recursive),
    );
  }

  async download(sandboxPath: string): Promise<Uint8Array> {
    requireCapability(this.capabilities, "fileTransfer", this.backend, "file transfer");
    return this.callServer((c) => c.downloadFiles(sandboxPath));
  }

  async downloadTo(
    sandboxPath: string,
    destination: string | Writable,
    options: DownloadToOptions = {},
  ): Promise<{ bytes: number }> {
    requireCapability(this.capabilities, "fileTransfer", this.backend, "file transfer");
    const streamOptions = {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    };
    const stream = (sink: Writable) =>
      this.callServer((c) => c.downloadFilesTo(sandboxPath, sink, streamOptions));
    if (typeof destination !== "string") return { bytes: await stream(destination) };
    // Fail before creating anything on the host when the runtime cannot answer.
    this.requireClient();
    return downloadToFile(destination, stream);
  }

  async vscodeUrl(): Promise<string | null> {
    if (!this.capabilities.vscode) return null;
    const base = this.sandbox?.vscodeBaseUrl;
    if (!base) return null;
    const token = await this.callServer((c) => c.vscodeConnectionToken());
    if (!token) return null;
    const folder = this.sandbox?.workspaceDir ?? "/workspace";
    return `${base.replace(/\/$/, "")}/?tkn=${encodeURIComponent(token)}&folder=${encodeURIComponent(folder)}`;
  }
}
