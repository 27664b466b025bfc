import type { ImageSpec } from "@agent-runtime/image-builder";
import { modalImagePlan, toModalImage } from "@agent-runtime/image-builder/modal";
import { type Logger, type Redactor, RuntimeError } from "@agent-runtime/runtime-core";
import type { App, Image, ModalClient } from "modal";
import { isTransient, sleep, toModalRuntimeError } from "./errors.js";

/** How many of the build log's last lines a failed or timed-out build reports. */
export const BUILD_LOG_TAIL_LINES = 30;
/** Longer log lines are cut. */
const MAX_LINE_CHARS = 500;
/** One `ImageJoinStreaming` window, in seconds (what modal@0.11.1's own build loop asks for). */
const JOIN_WINDOW_SECS = 55;
/** The pause before joining a build again after its log stream dropped. */
const STREAM_RETRY_MS = 1000;
/** How long the last look at a failed or stuck build's log may take. */
const LOG_FETCH_MS = 5000;

/** `GenericResult.status` values of Modal's API that end a build (modal_proto `GenericResult.GenericStatus`). */
const STATUS = { success: 1, failure: 2, terminated: 3, timeout: 4, evicted: 8 } as const;

/** `details.reason` of the errors {@link buildModalImage} throws. */
export type ImageBuildFailure = "IMAGE_BUILD_FAILED" | "IMAGE_BUILD_TIMEOUT";

/**
 * True when `err` is a failed (`IMAGE_BUILD_FAILED`, code FAILED_PRECONDITION) or timed-out (`IMAGE_BUILD_TIMEOUT`,
 * code TIMEOUT) Modal image build; its `details.buildLog` holds the build log's last lines.
 */
export function isModalImageBuildError(err: unknown, reason?: ImageBuildFailure): boolean {
  if (!(err instanceof RuntimeError)) return false;
  const r = err.details?.reason;
  return reason === undefined ? r === "IMAGE_BUILD_FAILED" || r === "IMAGE_BUILD_TIMEOUT" : r === reason;
}

// CSI and OSC escape sequences: colours and cursor moves make no sense in an error message.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escapes is the point
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)/g;

/** The last lines of a build log, as they stream in. */
class LogTail {
  readonly #lines: string[] = [];
  #partial = "";
  entries = 0;

  push(data: string): void {
    this.entries++;
    const parts = (this.#partial + data).split(/\r?\n|\r/);
    this.#partial = (parts.pop() ?? "").slice(-MAX_LINE_CHARS * 4);
    for (const line of parts) this.#add(line);
  }

  #add(raw: string): void {
    const line = raw.replace(ANSI, "").trimEnd();
    if (line === "") return;
    this.#lines.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    if (this.#lines.length > BUILD_LOG_TAIL_LINES) this.#lines.shift();
  }

  lines(redactor: Redactor): string[] {
    const out = [...this.#lines];
    const rest = this.#partial.replace(ANSI, "").trimEnd();
    if (rest) out.push(rest.slice(0, MAX_LINE_CHARS));
    return out.slice(-BUILD_LOG_TAIL_LINES).map((line) => redactor.redact(line));
  }
}

/** What {@link buildModalImage} needs. */
export interface BuildModalImageOptions {
  client: ModalClient;
  app: App;
  spec: ImageSpec;
  /** The build's deadline (`imageBuildTimeoutMs`), in ms. */
  timeoutMs: number;
  logger: Logger;
  /** Build logs should hold no secrets; their lines go through it anyway. */
  redactor: Redactor;
}

/**
 * Builds `spec` on Modal within `timeoutMs` and returns the SDK's built `Image`. modal@0.11.1's `image.build()`
 * waits for a build without bound (it re-opens `ImageJoinStreaming` forever) and drops the build log, so the
 * layers are built here first, exactly as the SDK would send them (`ImageGetOrCreate` per layer, `FROM <tag>` then
 * `FROM base`), following each build's log; the SDK's own `build()` then finds every layer built. A failed build
 * is FAILED_PRECONDITION, one still running at the deadline TIMEOUT (its log stream closed, nothing left polling);
 * both name the image, carry the log's last {@link BUILD_LOG_TAIL_LINES} lines in the message and in
 * `details.buildLog`, and have `details.reason` `IMAGE_BUILD_FAILED` / `IMAGE_BUILD_TIMEOUT`.
 */
export async function buildModalImage(o: BuildModalImageOptions): Promise<Image> {
  const { client, app } = o;
  const started = Date.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), o.timeoutMs);
  const tail = new LogTail();
  let imageId = "";
  try {
    const plan = modalImagePlan(o.spec);
    const builderVersion = await client.getImageBuilderVersion(app.environmentName);
    // The SDK's layers: the registry image alone, then one per `dockerfileCommands` call.
    const layers = [[], ...plan.layers];
    let baseImageId = "";
    for (const [index, commands] of layers.entries()) {
      const resp = await client.cpClient.imageGetOrCreate(
        {
          appId: app.appId,
          image: {
            dockerfileCommands: [index === 0 ? `FROM ${plan.tag}` : "FROM base", ...commands],
            secretIds: [],
            contextFiles: [],
            baseImages: index === 0 ? [] : [{ dockerTag: "base", imageId: baseImageId }],
          },
          builderVersion,
          forceBuild: false,
        },
        { signal: abort.signal },
      );
      imageId = resp.imageId;
      let status = resp.result?.status ?? 0;
      let exception = resp.result?.exception ?? "";
      let lastEntryId = "";
      while (!status) {
        const window = Math.min(JOIN_WINDOW_SECS, Math.max(1, (started + o.timeoutMs - Date.now()) / 1000));
        try {
          for await (const item of client.cpClient.imageJoinStreaming(
            { imageId, timeout: window, lastEntryId },
            { signal: abort.signal },
          )) {
            if (item.entryId) lastEntryId = item.entryId;
            for (const log of item.taskLogs) if (log.data) tail.push(log.data);
            if (item.result?.status) {
              status = item.result.status;
              exception = item.result.exception;
              break;
            }
          }
        } catch (err) {
          // A dropped stream (the SDK does not retry streams) is joined again from the last entry it sent.
          if (abort.signal.aborted || !isTransient(toModalRuntimeError(err, "image", "join"))) throw err;
          o.logger.debug("following the Modal image build failed; joining it again", { imageId });
          await sleep(STREAM_RETRY_MS, abort.signal);
        }
      }
      if (status !== STATUS.success) {
        if (tail.entries === 0) await fetchFinishedLog(client, imageId, tail);
        throw buildFailed(o, imageId, describeFailure(status, exception), tail);
      }
      baseImageId = imageId;
    }
    // Every layer is built: the SDK's own build() only looks them up (one ImageGetOrCreate each).
    const image = toModalImage(o.spec, client);
    await withAbort(image.build(app), abort.signal);
    o.logger.debug("modal image built", { imageId: image.imageId, ms: Date.now() - started });
    return image;
  } catch (err) {
    if (!abort.signal.aborted || isModalImageBuildError(err)) {
      throw isModalImageBuildError(err)
        ? err
        : toModalRuntimeError(err, "image", "Building the Modal image failed");
    }
    if (imageId && tail.entries === 0) await fetchFinishedLog(client, imageId, tail);
    const lines = tail.lines(o.redactor);
    throw new RuntimeError(
      "TIMEOUT",
      `The Modal image${imageId ? ` ${imageId}` : ""} did not finish building within imageBuildTimeoutMs (${o.timeoutMs} ms); the build may still be running on Modal (its layers are reused once it finishes). Raise imageBuildTimeoutMs, or use a prebuilt image (see runtime-modal's README).${showLog(lines)}`,
      { cause: err, details: { step: "image", reason: "IMAGE_BUILD_TIMEOUT", imageId, buildLog: lines } },
    );
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

function describeFailure(status: number, exception: string): string {
  if (status === STATUS.failure || status === STATUS.evicted)
    return `failed with the exception: ${exception}`;
  if (status === STATUS.terminated) return "was terminated by an external shut-down; try again";
  if (status === STATUS.timeout) return "timed out on Modal's side";
  return `failed with status ${status}`;
}

function showLog(lines: readonly string[]): string {
  if (lines.length === 0) return "\nThe build log was empty or could not be read.";
  return `\nLast ${lines.length} lines of the build log:\n${lines.map((l) => `  | ${l}`).join("\n")}`;
}

function buildFailed(o: BuildModalImageOptions, imageId: string, what: string, tail: LogTail): RuntimeError {
  const lines = tail.lines(o.redactor);
  const text = o.redactor.redact(`Image build for ${imageId} ${what}`);
  return new RuntimeError(
    "FAILED_PRECONDITION",
    `Building the Modal image failed: ${text} (fix the image spec; the build log is in the Modal dashboard).${showLog(lines)}`,
    { details: { step: "image", reason: "IMAGE_BUILD_FAILED", imageId, buildLog: lines } },
  );
}

/**
 * Reads the log of a build that already ended (Modal sends it only when asked with `includeLogsForFinished`),
 * within {@link LOG_FETCH_MS}; a failure leaves the tail as it was.
 */
async function fetchFinishedLog(client: ModalClient, imageId: string, tail: LogTail): Promise<void> {
  const signal = AbortSignal.timeout(LOG_FETCH_MS);
  try {
    for await (const item of client.cpClient.imageJoinStreaming(
      { imageId, timeout: 1, lastEntryId: "", includeLogsForFinished: true },
      { signal },
    )) {
      for (const log of item.taskLogs) if (log.data) tail.push(log.data);
      if (item.result?.status || item.eof) break;
    }
  } catch {
    // The tail says when it is empty; the build's own error is what matters.
  }
}

function withAbort<T>(pending: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new RuntimeError("TIMEOUT", "image build deadline"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
