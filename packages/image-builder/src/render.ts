import { type Instruction, serverInlineBytes, serverInstallInstructions } from "./action-server.js";
import { ImageBuilderError, parseOrThrow } from "./errors.js";
import { inlineFileCommands } from "./inline.js";
import { type RenderOptions, RenderOptionsSchema, type ResolvedRenderOptions } from "./options.js";
import { dockerEnvQuote, shellJoin, shellQuote } from "./shell.js";
import { type ImageSpec, type ImageSpecInput, parseImageSpec, type Step } from "./spec.js";

/** Docker's Dockerfile scanner fails on lines of 64 KiB or more; rendered lines stay under this. */
export const MAX_LINE_BYTES = 65_000;

/** Where an image starts, as rendered. */
export type RenderedBase = { kind: "registry"; image: string } | { kind: "dockerfile"; content: string };

/**
 * A spec rendered to Dockerfile instructions, split the way tags are: `lock` holds the build steps (base plus
 * dependencies), `source` installs the action server. Both targets (Dockerfile, Modal) use these lines.
 */
export interface RenderedImage {
  /** The base: a registry image, or Dockerfile text the instructions are appended to. */
  base: RenderedBase;
  /** One instruction per line for the build steps. */
  lock: string[];
  /** One instruction per line for the action-server install. */
  source: string[];
}

function stepBytes(step: Step): number {
  if (step.kind !== "copy-inline") return 0;
  return step.encoding === "base64"
    ? Buffer.from(step.content, "base64").length
    : Buffer.byteLength(step.content);
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(2)} MiB` : `${bytes} bytes`;
}

function checkInlineLimit(spec: ImageSpec, options: ResolvedRenderOptions): void {
  let total = 0;
  const check = (bytes: number, path: string) => {
    total += bytes;
    if (total <= options.maxInlineBytes) return;
    const issue =
      `${path}: inline content reaches ${formatBytes(total)}, over the limit of ${formatBytes(options.maxInlineBytes)} ` +
      "(maxInlineBytes)";
    throw new ImageBuilderError(
      "LIMIT_EXCEEDED",
      `Too much inline content for one image:\n  ${issue}\nInline files are written by RUN commands because Modal ` +
        "cannot COPY local files; put large files in a package (npm, pip, apt) or in the base image, use the npm " +
        "strategy for the action-server, or raise maxInlineBytes.",
      { issues: [issue] },
    );
  };
  spec.steps.forEach((step, index) => {
    if (step.kind === "copy-inline") check(stepBytes(step), `steps[${index}].content`);
  });
  if (spec.server?.kind === "agent-runtime") check(serverInlineBytes(spec.server), "server.install.bundle");
}

function stepInstructions(step: Step, path: string): Instruction[] {
  const one = (text: string): Instruction[] => [{ text, path }];
  switch (step.kind) {
    case "apt-install":
      return one(
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y" +
          `${step.noInstallRecommends ? " --no-install-recommends" : ""} ${shellJoin(step.packages)} && ` +
          "rm -rf /var/lib/apt/lists/*",
      );
    case "pip-install":
      return one(
        "RUN python3 -m pip install --no-cache-dir" +
          `${step.breakSystemPackages ? " --break-system-packages" : ""}` +
          `${step.indexUrl === undefined ? "" : ` --index-url ${shellQuote(step.indexUrl)}`} ${shellJoin(step.packages)}`,
      );
    case "npm-install":
      return one(`RUN npm install -g --no-audit --no-fund ${shellJoin(step.packages)}`);
    case "run":
      return one(
        typeof step.command === "string" ? `RUN ${step.command}` : `RUN ${JSON.stringify(step.command)}`,
      );
    case "env":
      // One line per variable, sorted: the order of literal values does not matter, and equal specs render alike.
      return Object.keys(step.vars)
        .sort()
        .map((name) => ({
          text: `ENV ${name}=${dockerEnvQuote(step.vars[name] ?? "")}`,
          path: `${path}.vars.${name}`,
        }));
    case "workdir":
      return one(`WORKDIR ${step.path}`);
    case "user":
      return one(`USER ${step.user}`);
    case "copy-inline": {
      const bytes = Buffer.from(step.content, step.encoding === "base64" ? "base64" : "utf8");
      return inlineFileCommands(step.path, bytes, step.mode).map((command) => ({
        text: `RUN ${command}`,
        path,
      }));
    }
  }
}

function checkLines(instructions: readonly Instruction[]): string[] {
  return instructions.map(({ text, path }) => {
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_LINE_BYTES) {
      const issue = `${path}: renders to a Dockerfile line of ${bytes} bytes, over Docker's limit (${MAX_LINE_BYTES})`;
      throw new ImageBuilderError("LIMIT_EXCEEDED", `${issue}; shorten it, or split it into several steps`, {
        issues: [issue],
      });
    }
    return text;
  });
}

/** @internal Renders an already validated spec. */
export function renderResolved(spec: ImageSpec, options: ResolvedRenderOptions): RenderedImage {
  checkInlineLimit(spec, options);
  const lock: Instruction[] = [];
  spec.steps.forEach((step, index) => {
    lock.push(...stepInstructions(step, `steps[${index}]`));
  });
  return {
    base: spec.base.kind === "registry" ? { kind: "registry", image: spec.base.image } : { ...spec.base },
    lock: checkLines(lock),
    source: checkLines(serverInstallInstructions(spec)),
  };
}

/**
 * Renders a spec to instructions (lock and source parts) without choosing a target. Validates the spec and
 * the inline size limit first.
 */
export function renderImage(spec: ImageSpecInput | ImageSpec, options: RenderOptions = {}): RenderedImage {
  const resolved = parseImageSpec(spec);
  return renderResolved(resolved, parseOrThrow(RenderOptionsSchema, options, "render options"));
}

const HEADER =
  "# Generated by @agent-runtime/image-builder from an image spec; edit the spec, not this file.";

/** @internal Dockerfile text: the base (a FROM line or the base Dockerfile), then the instructions. */
export function dockerfileText(base: RenderedBase, instructions: readonly string[]): string {
  if (base.kind === "registry") return [HEADER, `FROM ${base.image}`, ...instructions].join("\n") + "\n";
  const head = base.content.replace(/\s+$/, "");
  if (instructions.length === 0) return `${head}\n`;
  return (
    [head, "", "# Appended by @agent-runtime/image-builder from an image spec.", ...instructions].join("\n") +
    "\n"
  );
}

/**
 * A Dockerfile for the spec: `FROM` the base (or the base Dockerfile's text), the build steps, then the action
 * server install. Every value is quoted so that package names, variables and file contents reach the image
 * literally (no shell or Docker expansion); inline files are written by `RUN` commands, so no build context
 * is needed.
 *
 * @example
 * ```ts
 * const spec = fromRegistry("python:3.12-slim").aptInstall(["git"]).build();
 * writeFileSync("Dockerfile", toDockerfile(spec));
 * ```
 */
export function toDockerfile(spec: ImageSpecInput | ImageSpec, options: RenderOptions = {}): string {
  const rendered = renderImage(spec, options);
  return dockerfileText(rendered.base, [...rendered.lock, ...rendered.source]);
}
