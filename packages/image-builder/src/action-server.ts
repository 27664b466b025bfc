import { createHash } from "node:crypto";
import { z } from "zod";
import { ImageBuilderError, parseOrThrow } from "./errors.js";
import { inlineFileCommands } from "./inline.js";
import { shellQuote } from "./shell.js";
import type { AgentRuntimeServer, ImageSpec, ImageSpecInput, OpenHandsServer } from "./spec.js";
import { parseImageSpec } from "./spec.js";

/** Where the inline strategy writes the action-server bundle. */
export const INLINE_BUNDLE_PATH = "/opt/agent-runtime/action-server/bin.cjs";
/** Where the inline strategy writes the launcher that puts `agent-runtime-action-server` on the PATH. */
export const INLINE_LAUNCHER_PATH = "/usr/local/bin/agent-runtime-action-server";
/** The command name of our action server. */
export const ACTION_SERVER_COMMAND = "agent-runtime-action-server";

/** @internal One rendered instruction and the spec path it came from (for error messages). */
export interface Instruction {
  text: string;
  path: string;
}

/**
 * The shell command (one line) that makes sure Node.js >= `minNodeMajor`, bash and, when `needNpm`, npm are
 * present: missing ones come from apt-get (Debian, Ubuntu) or apk (Alpine); without either, or when the
 * installed Node.js is still too old, the build stops with a message saying what to use instead.
 */
export function ensureRuntimeCommand(minNodeMajor: number, needNpm: boolean): string {
  const hint = `use a base image with Node.js >= ${minNodeMajor} and bash (for example node:24-bookworm-slim)`;
  return [
    "set -e",
    `node_ok() { command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge ${minNodeMajor} ]; }`,
    'missing=""',
    'node_ok || missing="$missing nodejs"',
    'command -v bash >/dev/null 2>&1 || missing="$missing bash"',
    ...(needNpm ? ['command -v npm >/dev/null 2>&1 || missing="$missing npm"'] : []),
    'if [ -n "$missing" ]; then if command -v apt-get >/dev/null 2>&1; then apt-get update && ' +
      "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates$missing && " +
      "rm -rf /var/lib/apt/lists/*; elif command -v apk >/dev/null 2>&1; then apk add --no-cache ca-certificates$missing; " +
      `else echo "agent-runtime image-builder: the base image lacks$missing and has neither apt-get nor apk to install it; ${hint}" >&2; exit 1; fi; fi`,
    `node_ok || { echo "agent-runtime image-builder: the action-server needs Node.js >= ${minNodeMajor} (supported lines: 20, 22, 24), the image has $(node --version 2>/dev/null || echo none); ${hint}, or install a newer Node.js in an earlier step" >&2; exit 1; }`,
    `command -v bash >/dev/null 2>&1 || { echo "agent-runtime image-builder: bash is missing; ${hint}" >&2; exit 1; }`,
    ...(needNpm
      ? [
          `command -v npm >/dev/null 2>&1 || { echo "agent-runtime image-builder: npm is missing (the npm strategy needs it); ${hint}, or use the inline strategy" >&2; exit 1; }`,
        ]
      : []),
  ].join("; ");
}

function lastUser(spec: ImageSpec): string | undefined {
  let user: string | undefined;
  for (const step of spec.steps) if (step.kind === "user") user = step.user;
  return user;
}

/** @internal Bytes of inline content the server install adds (the inline bundle), for the size limit. */
export function serverInlineBytes(server: AgentRuntimeServer): number {
  return server.install.strategy === "inline" ? Buffer.byteLength(server.install.bundle, "utf8") : 0;
}

const launcher = `#!/bin/sh\nexec node ${INLINE_BUNDLE_PATH} "$@"\n`;

/**
 * @internal The instructions that install the spec's action server (the "source" layer): nothing for the
 * OpenHands preset or a spec without a server.
 */
export function serverInstallInstructions(spec: ImageSpec): Instruction[] {
  const server = spec.server;
  if (server?.kind !== "agent-runtime") return [];
  const install = server.install;
  const out: Instruction[] = [];
  const path = "server.install";
  const user = lastUser(spec);
  if (user !== undefined && user !== "root" && user !== "0") out.push({ text: "USER root", path });
  if (install.strategy === "npm") {
    out.push({ text: `RUN ${ensureRuntimeCommand(server.minNodeMajor, true)}`, path });
    const registry = install.registry === undefined ? "" : ` --registry ${shellQuote(install.registry)}`;
    out.push({
      text:
        `RUN set -e; npm install -g --no-audit --no-fund --no-update-notifier${registry} ` +
        `${shellQuote(`${install.package}@${install.version}`)}; command -v ${ACTION_SERVER_COMMAND} >/dev/null 2>&1 || ` +
        `{ echo "agent-runtime image-builder: ${ACTION_SERVER_COMMAND} is not on the PATH after npm install -g" >&2; exit 1; }`,
      path,
    });
  } else if (install.strategy === "inline") {
    out.push({ text: `RUN ${ensureRuntimeCommand(server.minNodeMajor, false)}`, path });
    const bundle = Buffer.from(install.bundle, "utf8");
    // Node is on the PATH from here on (the line above made sure): it inflates the bundle, a sixth of its size.
    for (const command of inlineFileCommands(INLINE_BUNDLE_PATH, bundle, "0755", { inflateWithNode: true })) {
      out.push({ text: `RUN ${command}`, path: `${path}.bundle` });
    }
    for (const command of inlineFileCommands(INLINE_LAUNCHER_PATH, Buffer.from(launcher), "0755")) {
      out.push({ text: `RUN ${command}`, path });
    }
  }
  out.push({ text: `RUN mkdir -p ${server.workingDir}`, path: "server.workingDir" });
  if (user !== undefined && user !== "root" && user !== "0") out.push({ text: `USER ${user}`, path });
  return out;
}

/**
 * @internal What of the server goes into the image, for the source hash: the install (an inline bundle by its
 * sha256), the working directory and the Node floor. Port and host only matter at start.
 */
export function serverImageIdentity(spec: ImageSpec): unknown {
  const server = spec.server;
  if (server === undefined) return { kind: "none" };
  if (server.kind === "openhands") return { kind: "openhands" };
  const install =
    server.install.strategy === "inline"
      ? { strategy: "inline", bundleSha256: createHash("sha256").update(server.install.bundle).digest("hex") }
      : server.install;
  return { kind: server.kind, install, workingDir: server.workingDir, minNodeMajor: server.minNodeMajor };
}

/** How a runtime starts the image's action server. */
export interface ServerLaunch {
  /** Which server this is. */
  kind: "agent-runtime" | "openhands";
  /** The command and its arguments (run without a shell). */
  argv: string[];
  /** The port the server listens on inside the sandbox. */
  port: number;
  /** The directory to run the command in, when it matters (OpenHands' poetry project). */
  cwd: string | undefined;
  /** Environment variables the runtime must set; `SESSION_API_KEY` turns authentication on. */
  requiredEnv: readonly string[];
}

/** Overrides of {@link serverLaunch}. */
export const ServerLaunchOverridesSchema = z.strictObject({
  /**
   * Listen on this port instead of the spec's.
   * @default the spec's `server.port`
   */
  port: z.number().int().min(1).max(65535).optional(),
});

/** Overrides of {@link serverLaunch} as written by callers. */
export type ServerLaunchOverrides = z.input<typeof ServerLaunchOverridesSchema>;

function agentRuntimeArgv(server: AgentRuntimeServer, port: number): string[] {
  const command = server.install.strategy === "preinstalled" ? server.install.command : ACTION_SERVER_COMMAND;
  return [command, String(port), "--working-dir", server.workingDir, "--host", server.host];
}

function openHandsArgv(server: OpenHandsServer, port: number): string[] {
  return [
    server.micromamba,
    "run",
    "-n",
    "openhands",
    "poetry",
    "run",
    "python",
    "-u",
    "-m",
    "openhands.runtime.action_execution_server",
    String(port),
    "--working-dir",
    server.workingDir,
    ...(server.plugins.length > 0 ? ["--plugins", ...server.plugins] : []),
    "--username",
    server.username,
    "--user-id",
    String(server.userId),
    ...(server.enableBrowser ? [] : ["--no-enable-browser"]),
  ];
}

/**
 * The command that starts the spec's action server, its port, the directory to run it in and the
 * environment it needs. Throws FAILED_PRECONDITION when the spec has no server.
 *
 * @example
 * ```ts
 * const { argv, port } = serverLaunch(spec);
 * // ["agent-runtime-action-server", "60000", "--working-dir", "/workspace", "--host", "0.0.0.0"]
 * ```
 */
export function serverLaunch(
  spec: ImageSpecInput | ImageSpec,
  overrides: ServerLaunchOverrides = {},
): ServerLaunch {
  const resolved = parseImageSpec(spec);
  const { port: portOverride } = parseOrThrow(
    ServerLaunchOverridesSchema,
    overrides,
    "server launch overrides",
  );
  const server = resolved.server;
  if (server === undefined) {
    throw new ImageBuilderError(
      "FAILED_PRECONDITION",
      "The image spec has no server: add one with withActionServer(...) or start from openHandsRuntimeSpec(...)",
      { issues: ["server: is required to start an action server"] },
    );
  }
  const port = portOverride ?? server.port;
  if (server.kind === "openhands") {
    return {
      kind: "openhands",
      argv: openHandsArgv(server, port),
      port,
      cwd: server.codeDir,
      requiredEnv: ["SESSION_API_KEY"],
    };
  }
  return {
    kind: "agent-runtime",
    argv: agentRuntimeArgv(server, port),
    port,
    cwd: undefined,
    requiredEnv: ["SESSION_API_KEY"],
  };
}
