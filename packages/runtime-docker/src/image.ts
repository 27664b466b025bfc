import { readFileSync } from "node:fs";
import { actionServerBinPath } from "@agent-runtime/action-server";
import type { DockerEngine } from "@agent-runtime/docker-engine";
import {
  buildWithEngine,
  fromRegistry,
  type ImageSpec,
  imageTags,
  isImageBuilderError,
  parseImageSpec,
  serverLaunch,
} from "@agent-runtime/image-builder";
import { type Logger, RuntimeError } from "@agent-runtime/runtime-core";
import { toDockerRuntimeError } from "./errors.js";
import { invalidOption } from "./options.js";

/**
 * The default recipe: `base` plus the bundled action-server written in by `RUN` lines (no registry needed at
 * build time), Node.js >= 20 and bash installed by apt-get or apk when the base lacks them.
 */
export function defaultImageSpec(base: string): ImageSpec {
  const bundle = readFileSync(actionServerBinPath(), "utf8");
  return fromRegistry(base).withActionServer({ strategy: "inline", bundle }).build();
}

/** An image resolved from the `image` option (or a session's `image` override): what to run and how. */
export interface ResolvedImage {
  spec: ImageSpec;
  /** The server's argv (the port is the spec's). */
  argv: string[];
  port: number;
  /** The server's working directory. */
  workspaceDir: string;
  /** True when the spec is built through the engine (false: a preinstalled image used as it is). */
  build: boolean;
  /** What {@link ImageCache} knows the image by: the spec's content-hash tag, or the preinstalled image's name. */
  cacheKey: string;
}

/** Resolves `image` (a name with the server preinstalled, a spec object, or absent for the default recipe). */
export function resolveImage(
  image: string | Record<string, unknown> | undefined,
  baseImage: string,
  path = "image",
): ResolvedImage {
  let spec: ImageSpec;
  try {
    if (image === undefined) spec = defaultImageSpec(baseImage);
    else if (typeof image === "string")
      spec = fromRegistry(image).withActionServer({ strategy: "preinstalled" }).build();
    else spec = parseImageSpec(image);
  } catch (err) {
    if (isImageBuilderError(err, "INVALID_ARGUMENT")) {
      const issues = err.issues.map((issue) => `${path}.${issue}`);
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `Invalid docker runtime options:\n  ${issues.join("\n  ")}`,
        {
          cause: err,
          details: { issues },
        },
      );
    }
    throw toDockerRuntimeError(err, `Resolving ${path}`);
  }
  if (spec.server?.kind !== "agent-runtime") {
    throw invalidOption(
      `${path}.server: runtime-docker runs agent-runtime's action-server; add one with withActionServer(...) (the OpenHands server is not supported here)`,
    );
  }
  const launch = serverLaunch(spec);
  // Only a registry image with the server preinstalled and no steps is used as it is.
  const build =
    spec.base.kind !== "registry" || spec.server.install.strategy !== "preinstalled" || spec.steps.length > 0;
  return {
    spec,
    argv: launch.argv,
    port: launch.port,
    workspaceDir: spec.server.workingDir,
    build,
    // Computed once here, not per create: a spec with the inline bundle is over a megabyte of JSON.
    cacheKey: !build && spec.base.kind === "registry" ? `ref:${spec.base.image}` : imageTags(spec).sourceTag,
  };
}

/**
 * Makes sure images exist on the engine: builds specs once per content hash (concurrent asks share one build),
 * and checks preinstalled images are there. Resolves with the image reference to create containers from.
 */
export class ImageCache {
  readonly #engine: DockerEngine;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #ready = new Map<string, Promise<string>>();

  constructor(engine: DockerEngine, logger: Logger, timeoutMs: number) {
    this.#engine = engine;
    this.#logger = logger;
    this.#timeoutMs = timeoutMs;
  }

  ensure(image: ResolvedImage): Promise<string> {
    const key = image.cacheKey;
    let ready = this.#ready.get(key);
    if (!ready) {
      ready = this.#prepare(image);
      // A failed build is not cached: the next create tries again.
      ready.catch(() => this.#ready.delete(key));
      this.#ready.set(key, ready);
    }
    return ready;
  }

  async #prepare(image: ResolvedImage): Promise<string> {
    if (!image.build) {
      const ref = (image.spec.base as { image: string }).image;
      const found = await this.#engine.inspectImage(ref).catch((err: unknown) => {
        throw toDockerRuntimeError(err, `Looking up image ${ref}`);
      });
      if (!found) {
        throw new RuntimeError(
          "NOT_FOUND",
          `Image ${ref} is not on the container engine at ${this.#engine.address}; pull or build it first (docker pull ${ref}), or leave image unset for the default recipe.`,
        );
      }
      return ref;
    }
    const started = Date.now();
    try {
      const result = await buildWithEngine(image.spec, {
        engine: this.#engine,
        timeoutMs: this.#timeoutMs,
        onLog: (line) => this.#logger.debug("image build", { line }),
      });
      if (result.built) {
        this.#logger.info("built the sandbox image", { image: result.image, ms: Date.now() - started });
      }
      return result.image;
    } catch (err) {
      throw toDockerRuntimeError(err, "Building the sandbox image");
    }
  }
}
