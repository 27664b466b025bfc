import { toModalImage } from "@agent-runtime/image-builder/modal";
import type { Logger } from "@agent-runtime/runtime-core";
import type { App, Image, ModalClient } from "modal";
import { withRetry } from "./errors.js";
import type { ResolvedImage } from "./image.js";
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
    emulatorHint?: string;
  }) {
    this.client = init.client;
    this.options = init.options;
    this.image = init.image;
    this.logger = init.logger;
    this.emulatorHint = init.emulatorHint;
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

  /** True once `image` (default: the provider's) was built (or found built) in this process. */
  imageReady(image: ResolvedImage = this.image): boolean {
    return this.#built.has(JSON.stringify(image.spec));
  }

  /**
   * An image built in `app` once per spec (default: the provider's; a session's `image` override brings its
   * own). Modal reuses a build with the same layers.
   */
  builtImage(app: App, resolved: ResolvedImage = this.image): Promise<Image> {
    const key = JSON.stringify(resolved.spec);
    let built = this.#built.get(key);
    if (!built) {
      built = (async () => {
        const image = toModalImage(resolved.spec, this.client);
        await withRetry(() => image.build(app), {
          step: "image",
          what: "Building the Modal image failed",
          retry: this.options.retry,
        });
        return image;
      })().catch((err: unknown) => {
        this.#built.delete(key);
        throw err;
      });
      this.#built.set(key, built);
    }
    return built;
  }
}
