import { type Logger, noopRedactor, type Redactor } from "@agent-runtime/runtime-core";
import type { App, Image, ModalClient } from "modal";
import { DEFAULT_IMAGE_BUILD_TIMEOUT_MS } from "./deadline.js";
import { withRetry } from "./errors.js";
import type { ResolvedImage } from "./image.js";
import { buildModalImage } from "./image-build.js";
import { LivenessMonitor, liveSandboxIds } from "./liveness.js";
import type { ResolvedModalRuntimeOptions } from "./options.js";

/**
 * What every runtime of one provider shares: the Modal client, options, the resolved image, and the App and
 * built Image (each looked up or built once, then cached; a failure is not cached).
 */
export class ModalServices {
  readonly client: ModalClient;
  readonly options: ResolvedModalRuntimeOptions;
  readonly image: ResolvedImage;
  readonly logger: Logger;
  /** The provider's redactor (build log lines pass through it). */
  readonly redactor: Redactor;
  /** One liveness poll for every running sandbox of the provider (see {@link LivenessMonitor}). */
  readonly liveness: LivenessMonitor;
  /**
   * Set against modal-emulator when the image's server may not exist on this machine (the emulator runs the
   * start command locally and skips build steps): what to set, added to failed starts.
   */
  readonly emulatorHint: string | undefined;
  #app: Promise<App> | undefined;
  /** Built images by spec (the provider's, and those of per-session `image` overrides). */
  readonly #built = new Map<string, Promise<Image>>();

  constructor(init: {
    client: ModalClient;
    options: ResolvedModalRuntimeOptions;
    image: ResolvedImage;
    logger: Logger;
    redactor?: Redactor;
    emulatorHint?: string;
  }) {
    this.client = init.client;
    this.options = init.options;
    this.image = init.image;
    this.logger = init.logger;
    this.redactor = init.redactor ?? noopRedactor;
    this.emulatorHint = init.emulatorHint;
    this.liveness = new LivenessMonitor({
      intervalMs: init.options.livenessIntervalMs,
      listLive: async () => liveSandboxIds(this.client, await this.app()),
      logger: init.logger,
    });
  }

  /** The provider's App (created if missing). */
  app(): Promise<App> {
    this.#app ??= withRetry(
      () =>
        this.client.apps.fromName(this.options.appName, {
          createIfMissing: true,
          ...(this.options.environment ? { environment: this.options.environment } : {}),
        }),
      {
        step: "app",
        what: `Looking up the Modal App "${this.options.appName}" failed`,
        retry: this.options.retry,
      },
    ).catch((err: unknown) => {
      this.#app = undefined;
      throw err;
    });
    return this.#app;
  }

  /** Drops a pending App lookup that outlived a start's deadline, so the next start asks Modal again. */
  forgetApp(): void {
    this.#app = undefined;
  }

  /** True once `image` (default: the provider's) was built (or found built) in this process. */
  imageReady(image: ResolvedImage = this.image): boolean {
    return this.#built.has(JSON.stringify(image.spec));
  }

  /**
   * An image built in `app` once per spec (default: the provider's; a session's `image` override brings its
   * own), within `imageBuildTimeoutMs` (see {@link buildModalImage}: a failed or stuck build names itself and
   * shows the build log's tail). Modal reuses a build with the same layers.
   */
  builtImage(app: App, resolved: ResolvedImage = this.image): Promise<Image> {
    const key = JSON.stringify(resolved.spec);
    let built = this.#built.get(key);
    if (!built) {
      built = buildModalImage({
        client: this.client,
        app,
        spec: resolved.spec,
        timeoutMs: this.options.imageBuildTimeoutMs ?? DEFAULT_IMAGE_BUILD_TIMEOUT_MS,
        logger: this.logger,
        redactor: this.redactor,
      }).catch((err: unknown) => {
        this.#built.delete(key);
        throw err;
      });
      this.#built.set(key, built);
    }
    return built;
  }
}
