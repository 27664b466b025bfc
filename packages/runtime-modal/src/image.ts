import { readFileSync } from "node:fs";
import { actionServerBinPath } from "@agent-runtime/action-server";
import {
  fromRegistry,
  type ImageSpec,
  isImageBuilderError,
  openHandsRuntimeSpec,
  parseImageSpec,
  serverLaunch,
} from "@agent-runtime/image-builder";
import { InvalidArgumentError } from "@agent-runtime/runtime-core";
import { toModalRuntimeError } from "./errors.js";
import type { ResolvedModalRuntimeOptions } from "./options.js";

/**
 * The default base image: Debian with Node.js 24 (the active LTS line, supported until April 2028) and bash.
 */
export const DEFAULT_BASE_IMAGE = "node:24-bookworm-slim";

/** What runs in the sandbox, resolved once per provider. */
export interface ResolvedImage {
  /** The image spec (validated). */
  spec: ImageSpec;
  /** `agent-runtime` (our server) or `openhands` (their server). */
  server: "agent-runtime" | "openhands";
  /** The server's argv, port and working directory. */
  argv: string[];
  port: number;
  cwd: string | undefined;
  /** The server's working directory (VS Code folder, `--working-dir`). */
  workspaceDir: string;
}

/**
 * The default image recipe on `base`: the bundled action-server written into the image by RUN commands (no npm
 * registry needed at build time), with Node.js >= 20 and bash installed by apt-get or apk when the base lacks
 * them. With no argument it is what runs when the `image` option is not given; CI builds it for real on a clean
 * Debian trixie base (test/default-image-build.test.ts).
 *
 * @example
 * ```ts
 * const spec = defaultImageSpec("debian:trixie-slim");
 * ```
 */
export function defaultImageSpec(base: string = DEFAULT_BASE_IMAGE): ImageSpec {
  const bundle = readFileSync(actionServerBinPath(), "utf8");
  return fromRegistry(base).withActionServer({ strategy: "inline", bundle }).build();
}

function specOf(image: ResolvedModalRuntimeOptions["image"]): ImageSpec {
  if (image === undefined) return defaultImageSpec();
  if (typeof image === "string")
    return fromRegistry(image).withActionServer({ strategy: "preinstalled" }).build();
  if ("openhands" in image && typeof image.openhands === "string") {
    const { openhands, ...server } = image;
    return openHandsRuntimeSpec({ image: openhands, ...server });
  }
  return parseImageSpec(image);
}

/**
 * Resolves the `image` option to a validated spec and the command that starts its server. Image-builder's
 * validation issues come back as `image.<path>: message`.
 */
export function resolveImage(options: ResolvedModalRuntimeOptions): ResolvedImage {
  let spec: ImageSpec;
  try {
    spec = specOf(options.image);
  } catch (err) {
    if (isImageBuilderError(err, "INVALID_ARGUMENT")) {
      const issues = err.issues.map((issue) => `image.${issue}`);
      throw new InvalidArgumentError(`Invalid modal runtime options:\n  ${issues.join("\n  ")}`, issues, {
        cause: err,
      });
    }
    throw toModalRuntimeError(err, "image", "Resolving the image failed");
  }
  if (spec.server === undefined) {
    throw new InvalidArgumentError(
      "Invalid modal runtime options:\n  image.server: the image spec has no server; add one with withActionServer(...) or use openHandsRuntimeSpec(...)",
      ["image.server: is required"],
    );
  }
  const launch = serverLaunch(spec);
  let argv = launch.argv;
  if (launch.kind === "agent-runtime" && options.serverCommand)
    argv = [...options.serverCommand, ...argv.slice(1)];
  return {
    spec,
    server: launch.kind,
    argv,
    port: launch.port,
    cwd: launch.cwd,
    workspaceDir: spec.server.workingDir,
  };
}
