import { DockerEngine, isDockerEngineError } from "@agent-runtime/docker-engine";
import { ImageBuilderError } from "./errors.js";
import { DEFAULT_REPOSITORY, type RenderOptions } from "./options.js";
import { toDockerfile } from "./render.js";
import { type ImageSpec, type ImageSpecInput, parseImageSpec } from "./spec.js";
import { type ImageTags, tagsOf } from "./tags.js";

/** Options of {@link buildWithEngine}. */
export interface EngineBuildOptions extends RenderOptions {
  /**
   * The engine: a {@link DockerEngine}, or its address (`unix:///var/run/docker.sock`, `tcp://host:port`).
   * @default `DOCKER_HOST`, else /var/run/docker.sock, else Podman's sockets
   */
  engine?: DockerEngine | string;
  /** The repository the image is tagged in (`<repository>:<sourceTag>`). @default "agent-runtime" */
  repository?: string;
  /** Build even when the tag exists. @default false */
  force?: boolean;
  /** Deadline of the build, in ms. @default 1200000 (20 minutes) */
  timeoutMs?: number;
  /** Each line of the build's log. */
  onLog?: (line: string) => void;
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

/**
 * Builds a spec's rendered Dockerfile through a container engine's build API (Docker, or Podman's compatible
 * service) and tags it with the spec's content-hash tag (`<repository>:<sourceTag>`). When that tag exists
 * already nothing is built: the same spec twice is one build. Errors: BUILD_FAILED with the last lines of the
 * build log, TIMEOUT, UNAVAILABLE (no engine), and the spec's own INVALID_ARGUMENT / LIMIT_EXCEEDED.
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
  try {
    const engine =
      options.engine instanceof DockerEngine
        ? options.engine
        : new DockerEngine(options.engine !== undefined ? { address: options.engine } : {});
    if (!options.force) {
      const existing = await engine.inspectImage(image);
      if (existing) return { image, imageId: existing.Id, built: false, tags };
    }
    const built = await engine.build({
      context: [{ name: "Dockerfile", content: dockerfile }],
      tag: image,
      labels: { [IMAGE_SOURCE_TAG_LABEL]: tags.sourceTag },
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { image, imageId: built.imageId, built: true, tags };
  } catch (err) {
    if (!isDockerEngineError(err)) throw err;
    const code =
      err.code === "TIMEOUT"
        ? "TIMEOUT"
        : err.code === "UNAVAILABLE"
          ? "UNAVAILABLE"
          : err.code === "INVALID_ARGUMENT"
            ? "INVALID_ARGUMENT"
            : "BUILD_FAILED";
    throw new ImageBuilderError(code, err.message, { cause: err });
  }
}
