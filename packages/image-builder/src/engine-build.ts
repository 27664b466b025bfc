import type { DockerEngine } from "@agent-runtime/docker-engine";
import { ImageBuilderError, type ImageBuilderErrorCode } from "./errors.js";
import { DEFAULT_REPOSITORY, type RenderOptions } from "./options.js";
import { toDockerfile } from "./render.js";
import { type ImageSpec, type ImageSpecInput, parseImageSpec } from "./spec.js";
import { type ImageTags, tagsOf } from "./tags.js";

/** Options of {@link buildWithEngine}. */
export interface EngineBuildOptions extends RenderOptions {
  /**
   * The engine: a `DockerEngine` of `@agent-runtime/docker-engine`, or its address (`unix:///var/run/docker.sock`,
   * an absolute socket path, `tcp://host:port`).
   * @default `DOCKER_HOST`, else the first existing of /var/run/docker.sock, /run/podman/podman.sock and the rootless Podman socket
   */
  engine?: DockerEngine | string;
  /** The repository the image is tagged in (`<repository>:<sourceTag>`). @default "agent-runtime" */
  repository?: string;
  /** Build even when the tag exists. @default false */
  force?: boolean;
  /** Deadline of the build, in ms. @default 1200000 (20 minutes) */
  timeoutMs?: number;
  /** Each line of the build's log, as it comes (nothing when the tag exists and nothing is built). */
  onLog?: (line: string) => void;
  /** Cancels the build (the engine stops it when the connection closes). */
  signal?: AbortSignal;
}

/** What {@link buildWithEngine} did. */
export interface EngineBuildResult {
  /** `<repository>:<sourceTag>`: the image to run. */
  image: string;
  /** The engine's image id. */
  imageId: string;
  /** False when the tag existed and nothing was built. */
  built: boolean;
  tags: ImageTags;
}

/** The label every image built here carries: the spec's source tag. */
export const IMAGE_SOURCE_TAG_LABEL = "agent-runtime.image.source-tag";

type EngineModule = typeof import("@agent-runtime/docker-engine");

const START_AN_ENGINE =
  "Start Docker, or Podman's Docker-compatible service (podman system service --time=0 unix:///run/podman/podman.sock), " +
  "and pass its address (CLI: --engine-address; API: engine) or set DOCKER_HOST.";

/**
 * `@agent-runtime/docker-engine` is an optional peer: loaded on the first build, so that packages using only the
 * renderers (runtime-modal) install without it.
 */
async function loadEngineModule(): Promise<EngineModule> {
  try {
    return await import("@agent-runtime/docker-engine");
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw cause;
    throw new ImageBuilderError(
      "FAILED_PRECONDITION",
      "Building through a container engine needs @agent-runtime/docker-engine (an optional peer dependency of image-builder): install it next to @agent-runtime/image-builder.",
      { cause },
    );
  }
}

/** The default deadline of a build: 20 minutes. */
export const DEFAULT_BUILD_TIMEOUT_MS = 1_200_000;

/** Lines of the build log kept for a TIMEOUT or CANCELLED message. */
const LOG_TAIL_LINES = 30;

/**
 * A DockerEngineError of either module format's copy of docker-engine (a CommonJS caller's engine throws the
 * CommonJS class, which the ES module's `isDockerEngineError` does not recognise).
 */
function isEngineError(err: unknown): err is Error & { code: string } {
  return (
    err instanceof Error &&
    err.name === "DockerEngineError" &&
    typeof (err as { code?: unknown }).code === "string"
  );
}

const CODE_OF_ENGINE_ERROR: Partial<Record<string, ImageBuilderErrorCode>> = {
  TIMEOUT: "TIMEOUT",
  UNAVAILABLE: "UNAVAILABLE",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  CANCELLED: "CANCELLED",
};

/**
 * Builds a spec's rendered Dockerfile through a container engine's build API (Docker, or Podman's compatible
 * service) and tags it with the spec's content-hash tag (`<repository>:<sourceTag>`). When that tag exists
 * already nothing is built: the same spec twice is one build. Errors: BUILD_FAILED with the last lines of the
 * build log, TIMEOUT, UNAVAILABLE (no engine, naming the address tried and how to start one), CANCELLED, and the
 * spec's own INVALID_ARGUMENT / LIMIT_EXCEEDED.
 *
 * @example
 * ```ts
 * const { image, built } = await buildWithEngine(spec, { engine: "unix:///var/run/docker.sock" });
 * ```
 */
export async function buildWithEngine(
  input: ImageSpecInput | ImageSpec,
  options: EngineBuildOptions = {},
): Promise<EngineBuildResult> {
  const spec = parseImageSpec(input);
  const dockerfile = toDockerfile(
    spec,
    options.maxInlineBytes !== undefined ? { maxInlineBytes: options.maxInlineBytes } : {},
  );
  const tags = tagsOf(spec);
  const image = `${options.repository ?? DEFAULT_REPOSITORY}:${tags.sourceTag}`;
  const { DockerEngine, tailLines } = await loadEngineModule();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
  // The deadline and the caller's signal are enforced here, by aborting the request: however the aborted
  // response stream then fails, the error says which of the two ended the build.
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeoutMs);
  timer.unref();
  const onAbort = () => abort.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const log: string[] = [];
  let resolved = false;
  try {
    // Not instanceof: a CommonJS caller's DockerEngine is another copy of the class than the one imported here.
    const engine =
      typeof options.engine === "object"
        ? options.engine
        : new DockerEngine(options.engine !== undefined ? { address: options.engine } : {});
    resolved = true;
    if (!options.force) {
      const existing = await engine.inspectImage(image);
      if (existing) return { image, imageId: existing.Id, built: false, tags };
    }
    if (options.signal?.aborted) abort.abort();
    const built = await engine.build({
      context: [{ name: "Dockerfile", content: dockerfile }],
      tag: image,
      labels: { [IMAGE_SOURCE_TAG_LABEL]: tags.sourceTag },
      // A margin past our own deadline, so that ours is the one that fires.
      timeoutMs: timeoutMs + 60_000,
      signal: abort.signal,
      onLog: (line) => {
        log.push(line);
        if (log.length > LOG_TAIL_LINES) log.shift();
        options.onLog?.(line);
      },
    });
    return { image, imageId: built.imageId, built: true, tags };
  } catch (err) {
    const tail = () => tailLines(log.join("\n"), LOG_TAIL_LINES) || "(empty)";
    if (timedOut) {
      throw new ImageBuilderError(
        "TIMEOUT",
        `Building ${image} took longer than ${timeoutMs} ms (raise timeoutMs, CLI --timeout-ms). Last lines of the build log:\n${tail()}`,
        { cause: err },
      );
    }
    if (abort.signal.aborted) {
      throw new ImageBuilderError(
        "CANCELLED",
        `Building ${image} was cancelled. Last lines of the build log:\n${tail()}`,
        {
          cause: err,
        },
      );
    }
    if (!isEngineError(err)) throw err;
    const code = CODE_OF_ENGINE_ERROR[err.code] ?? "BUILD_FAILED";
    // An engine that was found but does not answer: say how to start one (the "none found" error already does).
    const message = code === "UNAVAILABLE" && resolved ? `${err.message} ${START_AN_ENGINE}` : err.message;
    throw new ImageBuilderError(code, message, { cause: err });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}
