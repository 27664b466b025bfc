import { createHash } from "node:crypto";
import { type DockerEngine, isDockerEngineError } from "@agent-runtime/docker-engine";
import type { Logger } from "@agent-runtime/runtime-core";
import type { ResolvedSandboxEngineOptions } from "./options.js";

/** The label on every image and container the emulator makes in a container engine. */
export const MANAGED_BY_LABEL = "agent-runtime.managed-by";
/** The value of {@link MANAGED_BY_LABEL}. */
export const MANAGED_BY = "modal-emulator";

/** One layer as `ImageGetOrCreate` sends it, with its `base_images` already resolved to engine images. */
export interface EngineLayer {
  /** `dockerfile_commands`, the first one `FROM <image or base tag>`. */
  commands: readonly string[];
  /** `base_images[].docker_tag` -> the engine image that base was built as. */
  bases: ReadonlyMap<string, string>;
}

/** How an engine build ended. */
export type EngineBuildOutcome = { ok: true; image: string; built: boolean } | { ok: false; message: string };

const FROM_RE = /^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(.*)$/is;

/**
 * Builds Modal image layers for real through a container engine: each layer's Dockerfile commands become a
 * Dockerfile (`FROM base` replaced by the engine image of that base, registry bases by `baseImageMap`), tagged
 * `<repository>:<hash of the Dockerfile and its base's image id>`. A tag that exists already is not built
 * again, and concurrent builds of one tag share one engine build.
 */
export class EngineImageBuilder {
  readonly #engine: DockerEngine;
  readonly #options: ResolvedSandboxEngineOptions;
  readonly #logger: Logger;
  readonly #inFlight = new Map<string, Promise<EngineBuildOutcome>>();

  constructor(engine: DockerEngine, options: ResolvedSandboxEngineOptions, logger: Logger) {
    this.#engine = engine;
    this.#options = options;
    this.#logger = logger;
  }

  /** The layer as a Dockerfile whose `FROM` lines point at engine images, and those images. */
  render(layer: EngineLayer): { dockerfile: string; froms: string[] } {
    const froms: string[] = [];
    const lines = layer.commands.map((command) => {
      const m = FROM_RE.exec(command);
      if (!m) return command;
      const ref = m[3] as string;
      const image = layer.bases.get(ref) ?? this.#options.baseImageMap[ref] ?? ref;
      froms.push(image);
      return `${m[1]}${m[2]}${image}${m[4]}`;
    });
    return { dockerfile: `${lines.join("\n")}\n`, froms };
  }

  /**
   * Builds the layer, or finds its tag built already (unless `force`: the SDK's `force_build`); `log` gets each
   * build log line. Never throws.
   */
  async build(
    layer: EngineLayer,
    log: (line: string) => void,
    signal: AbortSignal,
    force = false,
  ): Promise<EngineBuildOutcome> {
    const { dockerfile, froms } = this.render(layer);
    const tag = await this.#tagOf(dockerfile, froms);
    const running = this.#inFlight.get(tag);
    if (running) {
      log(`Waiting for the build of ${tag} that is already running`);
      return running;
    }
    const build = this.#build(dockerfile, tag, log, signal, force).finally(() => this.#inFlight.delete(tag));
    this.#inFlight.set(tag, build);
    return build;
  }

  async #build(
    dockerfile: string,
    tag: string,
    log: (line: string) => void,
    signal: AbortSignal,
    force: boolean,
  ): Promise<EngineBuildOutcome> {
    try {
      if (!force && (await this.#engine.inspectImage(tag))) {
        log(`Using ${tag}, built before from the same Dockerfile`);
        return { ok: true, image: tag, built: false };
      }
      log(`Building ${tag} with the container engine at ${this.#engine.address}`);
      const started = Date.now();
      await this.#engine.build({
        context: [{ name: "Dockerfile", content: dockerfile }],
        tag,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
        timeoutMs: this.#options.buildTimeoutMs,
        signal,
        onLog: log,
      });
      this.#logger.debug("modal-emulator: engine image built", { tag, ms: Date.now() - started });
      return { ok: true, image: tag, built: true };
    } catch (err) {
      return { ok: false, message: messageOf(err) };
    }
  }

  /**
   * The content tag: the Dockerfile and the engine's id of its base image (so a rebuilt base gives new tags);
   * a base the engine does not have yet (it will pull it) counts by name.
   */
  async #tagOf(dockerfile: string, froms: readonly string[]): Promise<string> {
    const hash = createHash("sha256").update(dockerfile);
    for (const from of froms) {
      const base = await this.#engine.inspectImage(from).catch(() => undefined);
      hash.update(`\0${base?.Id ?? from}`);
    }
    return `${this.#options.repository}:${hash.digest("hex").slice(0, 32)}`;
  }
}

function messageOf(err: unknown): string {
  if (isDockerEngineError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}
