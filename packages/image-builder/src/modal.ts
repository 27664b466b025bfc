/**
 * `@agent-runtime/image-builder/modal`: an image spec as a Modal image. This entry never imports `modal`:
 * it takes the client structurally, so it works with `modal@0.11.1` (an optional peer dependency) and
 * type-checks without it.
 */
import { dockerfileBaseForModal } from "./dockerfile-base.js";
import { parseOrThrow } from "./errors.js";
import { type RenderOptions, RenderOptionsSchema } from "./options.js";
import { renderResolved } from "./render.js";
import { type ImageSpec, type ImageSpecInput, parseImageSpec } from "./spec.js";

/** The part of modal's `Image` this package uses (`Image.dockerfileCommands`). */
export interface ModalImageLike<TImage> {
  /** Adds one layer built from Dockerfile commands; returns a new image. */
  dockerfileCommands(commands: string[]): TImage;
}

/** The part of modal's `ModalClient` this package uses (`client.images.fromRegistry`). */
export interface ModalClientLike<TImage extends ModalImageLike<TImage>, TSecret = never> {
  /** modal's `ImageService`. */
  images: {
    /** An image from a registry tag, optionally with a Secret holding registry credentials. */
    fromRegistry(tag: string, secret?: TSecret): TImage;
  };
}

/** Options of {@link toModalImage}. */
export type ModalImageOptions<TSecret = never> = RenderOptions & {
  /**
   * A modal `Secret` with registry credentials for a private base image (`REGISTRY_USERNAME`/`_PASSWORD`).
   * @default undefined (a public image)
   */
  registrySecret?: TSecret;
};

/** A spec in Modal's form: the registry tag and the layers of Dockerfile commands on top of it. */
export interface ModalImagePlan {
  /** The registry image for `images.fromRegistry`. */
  tag: string;
  /**
   * Layers for `dockerfileCommands`, in order, none empty: a Dockerfile base's own instructions, the build
   * steps, the action-server install. Separate layers let Modal reuse the steps when only the server changes.
   */
  layers: string[][];
}

/**
 * The tag and command layers {@link toModalImage} passes to Modal, without a client. A Dockerfile base must be
 * single-stage without local COPY (UNSUPPORTED otherwise); inline files are written by `RUN` commands within
 * the inline size limit (LIMIT_EXCEEDED past it).
 */
export function modalImagePlan(
  spec: ImageSpecInput | ImageSpec,
  options: RenderOptions = {},
): ModalImagePlan {
  const resolved = parseImageSpec(spec);
  const rendered = renderResolved(resolved, parseOrThrow(RenderOptionsSchema, options, "render options"));
  let tag: string;
  let baseCommands: string[] = [];
  if (rendered.base.kind === "registry") {
    tag = rendered.base.image;
  } else {
    const converted = dockerfileBaseForModal(rendered.base.content);
    tag = converted.tag;
    baseCommands = converted.commands;
  }
  return { tag, layers: [baseCommands, rendered.lock, rendered.source].filter((layer) => layer.length > 0) };
}

/**
 * The spec as a modal `Image` (not built yet: Modal builds it lazily, or on `image.build(app)`).
 *
 * @example
 * ```ts
 * import { ModalClient } from "modal";
 * import { toModalImage } from "@agent-runtime/image-builder/modal";
 * const modal = new ModalClient();
 * const image = toModalImage(spec, modal); // an Image of modal@0.11.1
 * const sb = await modal.sandboxes.create(app, image, { command: serverLaunch(spec).argv });
 * ```
 */
export function toModalImage<TImage extends ModalImageLike<TImage>, TSecret = never>(
  spec: ImageSpecInput | ImageSpec,
  client: ModalClientLike<TImage, TSecret>,
  options: ModalImageOptions<TSecret> = {},
): TImage {
  const { registrySecret, ...renderOptions } = options;
  const plan = modalImagePlan(spec, renderOptions);
  let image =
    registrySecret === undefined
      ? client.images.fromRegistry(plan.tag)
      : client.images.fromRegistry(plan.tag, registrySecret);
  for (const layer of plan.layers) image = image.dockerfileCommands(layer);
  return image;
}
