import { createHash } from "node:crypto";
import type { Logger } from "@agent-runtime/runtime-core";
import type { EngineImageBuilder, EngineLayer } from "./engine-images.js";
import type { Faults } from "./faults.js";
import { notFound } from "./grpc-errors.js";
import type { CallContext } from "./grpc-service.js";
import type { ImageGetOrCreateMsg, ImageJoinStreamingMsg } from "./messages.js";
import { GenericStatus, type SandboxResult } from "./sandbox.js";
import { checkGpu } from "./strict.js";

/** Upper bound of one long-poll window (the SDK asks for 55 s). */
export const LONG_POLL_CAP_SECS = 55;

interface ImageRecord {
  imageId: string;
  logs: { entryId: string; data: string }[];
  result?: SandboxResult;
  done: Promise<void>;
  /** Engine mode: the engine image this layer was built as. */
  engineImage?: string;
  /** Engine mode: the log grows while the build runs, so joins stream it as it comes. */
  live?: boolean;
  /** Joins waiting for the next log line or the result (live builds only). */
  waiters?: Set<() => void>;
}

/** What the image service needs from the rest of the control plane. */
export interface ImageServiceDeps {
  strict: boolean;
  faults: Faults;
  appExists(appId: string): boolean;
  /** Throws NOT_FOUND for an unknown secret. */
  checkSecret(secretId: string): void;
  /** Engine mode: builds layers for real (see engine-images.ts). */
  builder?: EngineImageBuilder;
  /** Aborts engine builds when the emulator closes. */
  shutdown?: AbortSignal;
  logger?: Logger;
}

/** Clamps a client's long-poll timeout (seconds) to `[0, LONG_POLL_CAP_SECS]`; 0 means "do not wait". */
export function clampTimeoutSecs(timeout: number | undefined): number {
  if (timeout === undefined || !Number.isFinite(timeout) || timeout <= 0) return 0;
  return Math.min(timeout, LONG_POLL_CAP_SECS);
}

/** Resolves when `signal` aborts. */
export function onAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Images: `ImageGetOrCreate` and `ImageJoinStreaming`. Nothing is pulled or built: each layer's Dockerfile
 * commands are replayed as its build log (sandboxes use the host's tools). Identical layers share one image id.
 */
export class ImageService {
  readonly #deps: ImageServiceDeps;
  readonly #images = new Map<string, ImageRecord>();

  constructor(deps: ImageServiceDeps) {
    this.#deps = deps;
  }

  /**
   * The built image `imageId` (with its engine image in engine mode), or undefined when it does not exist or
   * has not built successfully.
   */
  built(imageId: string | undefined): { imageId: string; engineImage?: string } | undefined {
    const image = this.#images.get(imageId ?? "");
    return image?.result?.status === GenericStatus.SUCCESS ? image : undefined;
  }

  getOrCreate(req: ImageGetOrCreateMsg): object {
    if (req.app_id && !this.#deps.appExists(req.app_id)) throw notFound(`App ${req.app_id} not found`);
    const commands = req.image?.dockerfile_commands ?? [];
    const bases = req.image?.base_images ?? [];
    for (const base of bases) {
      if (!base.image_id || !this.#images.get(base.image_id)?.result) {
        throw notFound(`Base image ${base.image_id ?? "(none)"} not found`);
      }
    }
    for (const id of req.image?.secret_ids ?? []) this.#deps.checkSecret(id);
    if (this.#deps.strict) checkGpu(req.image?.gpu_config, "ImageGetOrCreate");
    const digest = createHash("sha256")
      .update(JSON.stringify([commands, bases, req.builder_version ?? "", req.image?.gpu_config ?? {}]))
      .digest("base64")
      .replace(/[^A-Za-z0-9]/g, "")
      .slice(0, 22);
    const imageId = `im-${digest}`;
    const cached = this.#images.get(imageId);
    if (cached?.result?.status === GenericStatus.SUCCESS && !req.force_build) {
      return {
        image_id: imageId,
        result: cached.result,
        metadata: { image_builder_version: req.builder_version },
      };
    }
    if (cached && !cached.result && !req.force_build) return { image_id: imageId };
    const fault = this.#deps.faults.takeImageBuildFault();
    let finish: () => void = () => {};
    const record: ImageRecord = { imageId, logs: [], done: new Promise((r) => (finish = r)) };
    this.#images.set(imageId, record);
    const log = (data: string): void => {
      record.logs.push({ entryId: `${record.logs.length + 1}`, data });
      for (const w of [...(record.waiters ?? [])]) w();
    };
    const builder = this.#deps.builder;
    if (builder && !fault) {
      // Engine mode: a real build; faults keep their replayed behaviour below.
      record.live = true;
      record.waiters = new Set();
      const baseImages = new Map(
        bases.map((b) => [b.docker_tag ?? "", this.#images.get(b.image_id ?? "")?.engineImage ?? ""]),
      );
      void this.#engineBuild(
        builder,
        record,
        { commands, bases: baseImages },
        log,
        finish,
        req.force_build === true,
      );
      return { image_id: imageId };
    }
    // "Build": replay the Dockerfile as a build log. Commands are not run: sandboxes use the host's tools.
    setImmediate(() => {
      commands.forEach((cmd, i) => {
        log(`Step ${i + 1}/${commands.length} : ${cmd}\n`);
      });
      if (fault?.kind === "hang") return; // never finishes: no result, `done` never settles
      if (fault?.kind === "fail") {
        for (const line of (fault.log ?? "").split("\n").filter(Boolean)) log(`${line}\n`);
        log(`${fault.message}\n`);
        record.result = { status: GenericStatus.FAILURE, exitcode: 1, exception: fault.message };
      } else {
        log(`Built image ${imageId}\n`);
        record.result = { status: GenericStatus.SUCCESS, exitcode: 0 };
      }
      finish();
    });
    return { image_id: imageId };
  }

  async #engineBuild(
    builder: EngineImageBuilder,
    record: ImageRecord,
    layer: EngineLayer,
    log: (data: string) => void,
    finish: () => void,
    force: boolean,
  ): Promise<void> {
    const signal = this.#deps.shutdown ?? new AbortController().signal;
    const outcome = await builder.build(layer, (line) => log(`${line}\n`), signal, force);
    if (outcome.ok) {
      record.engineImage = outcome.image;
      log(`Built image ${record.imageId} as ${outcome.image}\n`);
      record.result = { status: GenericStatus.SUCCESS, exitcode: 0 };
      this.#deps.logger?.info("modal-emulator: image built", {
        imageId: record.imageId,
        engineImage: outcome.image,
        built: outcome.built,
      });
    } else {
      log(`${outcome.message}\n`);
      record.result = { status: GenericStatus.FAILURE, exitcode: 1, exception: outcome.message };
      this.#deps.logger?.info("modal-emulator: image build failed", { imageId: record.imageId });
    }
    finish();
    for (const w of [...(record.waiters ?? [])]) w();
  }

  async join(
    req: ImageJoinStreamingMsg,
    ctx: CallContext,
    write: (m: object) => Promise<void>,
  ): Promise<void> {
    const id = req.image_id ?? "";
    const record = this.#images.get(id);
    if (!record) throw notFound(`Image ${id} not found`);
    // Strict: the log of a build that had already finished when the call began is only sent on request.
    // Source: the Python client's `Image._logs` ("Streams logs from an image, or returns logs from an already
    // completed image") is the one caller that sets include_logs_for_finished=True; the build loops of both
    // SDKs leave it false and read only the result.
    const logsWanted = !this.#deps.strict || !record.result || req.include_logs_for_finished === true;
    const timeoutMs = clampTimeoutSecs(req.timeout) * 1000 || LONG_POLL_CAP_SECS * 1000;
    if (record.live) return this.#joinLive(record, req, ctx, write, logsWanted, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      record.done,
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
      onAbort(ctx.signal),
    ]);
    clearTimeout(timer);
    const after = Number.parseInt(req.last_entry_id ?? "", 10) || 0;
    const logs = logsWanted ? record.logs.filter((l) => Number(l.entryId) > after) : [];
    if (logs.length > 0) {
      await write({
        task_logs: logs.map((l) => ({ data: l.data, file_descriptor: 1 })),
        entry_id: logs[logs.length - 1]!.entryId,
      });
    }
    if (record.result) await write({ result: record.result, eof: true });
  }

  /** A join of an engine build: log lines as they come, then the result (or nothing at the window's end). */
  async #joinLive(
    record: ImageRecord,
    req: ImageJoinStreamingMsg,
    ctx: CallContext,
    write: (m: object) => Promise<void>,
    logsWanted: boolean,
    timeoutMs: number,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let after = Number.parseInt(req.last_entry_id ?? "", 10) || 0;
    for (;;) {
      const logs = logsWanted ? record.logs.filter((l) => Number(l.entryId) > after) : [];
      if (logs.length > 0) {
        after = Number(logs[logs.length - 1]!.entryId);
        await write({
          task_logs: logs.map((l) => ({ data: l.data, file_descriptor: 1 })),
          entry_id: logs[logs.length - 1]!.entryId,
        });
      }
      if (record.result) {
        await write({ result: record.result, eof: true });
        return;
      }
      const left = deadline - Date.now();
      if (left <= 0 || ctx.signal.aborted) return;
      let timer: NodeJS.Timeout | undefined;
      let wake: () => void = () => {};
      await Promise.race([
        new Promise<void>((r) => {
          wake = r;
          record.waiters?.add(r);
        }),
        new Promise((r) => {
          timer = setTimeout(r, left);
        }),
        onAbort(ctx.signal),
      ]);
      clearTimeout(timer);
      record.waiters?.delete(wake);
    }
  }
}
