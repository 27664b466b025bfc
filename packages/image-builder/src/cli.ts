/**
 * `agent-runtime-image`: validate an image spec (JSON or YAML), render its Dockerfile, print its content-hash
 * tags, plan a build against the tags that exist, or build it through a container engine. Errors point into the
 * spec and exit non-zero.
 */
import { readFileSync, realpathSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { serverLaunch } from "./action-server.js";
import { stableStringify } from "./canonical-json.js";
import { CliUsageError, checkBuildValues, runBuildCommand } from "./cli-build.js";
import { ImageBuilderError } from "./errors.js";
import { DEFAULT_MAX_INLINE_BYTES } from "./options.js";
import { renderResolved, toDockerfile } from "./render.js";
import { type ImageSpec, parseImageSpec } from "./spec.js";
import { resolveBuildPlan, tagsOf } from "./tags.js";

/** Where the CLI reads and writes; tests pass their own. */
export interface CliIo {
  /** Receives normal output. */
  stdout(text: string): void;
  /** Receives errors. */
  stderr(text: string): void;
  /** The directory relative paths are resolved against. */
  cwd: string;
  /** Reads all of standard input (for the spec path `-`). */
  readStdin(): Promise<string>;
}

/** Exit codes of the CLI. */
export const CliExitCode = {
  /** Success. */
  OK: 0,
  /** The spec is invalid, or cannot be rendered for the target. */
  FAILED: 1,
  /** The command line is wrong (unknown command or option, missing argument). */
  USAGE: 2,
} as const;

const USAGE = `Usage: agent-runtime-image <command> <spec.json|spec.yaml|-> [options]

Commands:
  validate <spec>                     check the spec (and that it renders); print a summary
  dockerfile <spec>                   print the Dockerfile
  hash <spec>                         print the content-hash tags as JSON
  canonical <spec>                    print the canonical JSON form of the spec
  server <spec>                       print how to start the image's action server as JSON
  plan <spec> --existing <tags.txt>   print the build plan as JSON (tags file: one tag per line, # comments)
  build <spec> [--engine docker]      build the image through a container engine and tag it
                                      <repository>:<source tag>; the build log goes to stderr, then
                                      { "image", "imageId", "built" } is printed as JSON (built: false when
                                      the tag existed and nothing was built)

Options:
  --max-inline-bytes <n>   limit on inline content (default 2097152)
  --repository <name>      plan, build: the image repository (default agent-runtime)
  --force                  plan, build: build from scratch whatever exists
  --no-versioned           plan: never start from the versioned image
  --engine <kind>          build: the engine's API; only docker (Docker, or Podman's Docker-compatible
                           service) is supported (default docker)
  --engine-address <addr>  build: unix:///path/to/docker.sock, an absolute socket path or tcp://host:port
                           (default DOCKER_HOST, else /var/run/docker.sock, /run/podman/podman.sock,
                           $XDG_RUNTIME_DIR/podman/podman.sock: the first that exists)
  --timeout-ms <n>         build: deadline of the build in ms (default 1200000)
  -h, --help               show this help
  -v, --version            show the version

In a spec file, a copy-inline step may give "contentFile" and an inline action-server install may give
"bundleFile" instead of the content; paths are relative to the spec file.
Exit codes: 0 success, 1 invalid spec, render or build failure (BUILD_FAILED with the end of the build log,
UNAVAILABLE when the engine cannot be reached, TIMEOUT), 2 usage error.`;

function usageError(message: string): CliUsageError {
  return new CliUsageError(message);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new ImageBuilderError("NOT_FOUND", `cannot read ${what} ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Replaces `contentFile` / `bundleFile` references (relative to the spec file) with the files' content. */
function resolveFileReferences(raw: unknown, baseDir: string): unknown {
  if (!isRecord(raw)) return raw;
  const out: Record<string, unknown> = { ...raw };
  const issues: string[] = [];
  const load = (path: unknown, where: string): Buffer | undefined => {
    if (typeof path !== "string") {
      issues.push(`${where}: must be a path string`);
      return undefined;
    }
    try {
      return readFileSync(resolve(baseDir, path));
    } catch (cause) {
      issues.push(`${where}: cannot read ${path}: ${(cause as Error).message}`);
      return undefined;
    }
  };
  if (Array.isArray(raw.steps)) {
    out.steps = raw.steps.map((step: unknown, index) => {
      if (!isRecord(step) || step.kind !== "copy-inline" || !("contentFile" in step)) return step;
      const { contentFile, ...rest } = step;
      if ("content" in rest) {
        issues.push(`steps[${index}]: give either content or contentFile, not both`);
        return step;
      }
      const bytes = load(contentFile, `steps[${index}].contentFile`);
      if (bytes === undefined) return step;
      return rest.encoding === "utf8"
        ? { ...rest, content: bytes.toString("utf8") }
        : { ...rest, content: bytes.toString("base64"), encoding: "base64" };
    });
  }
  if (isRecord(raw.server) && isRecord(raw.server.install) && "bundleFile" in raw.server.install) {
    const { bundleFile, ...install } = raw.server.install;
    if ("bundle" in install) issues.push("server.install: give either bundle or bundleFile, not both");
    else {
      const bytes = load(bundleFile, "server.install.bundleFile");
      if (bytes !== undefined)
        out.server = { ...raw.server, install: { ...install, bundle: bytes.toString("utf8") } };
    }
  }
  if (issues.length > 0) {
    throw new ImageBuilderError("NOT_FOUND", `Cannot load files the spec names:\n  ${issues.join("\n  ")}`, {
      issues,
    });
  }
  return out;
}

async function loadSpec(file: string, io: CliIo): Promise<ImageSpec> {
  const fromStdin = file === "-";
  const path = fromStdin ? "<stdin>" : resolve(io.cwd, file);
  const text = fromStdin ? await io.readStdin() : readText(path, "the spec");
  let raw: unknown;
  try {
    raw = extname(path).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
    throw new ImageBuilderError(
      "INVALID_ARGUMENT",
      `${file} is not valid JSON or YAML: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  return parseImageSpec(resolveFileReferences(raw, fromStdin ? io.cwd : dirname(path)));
}

function readTagsFile(file: string, io: CliIo): string[] {
  return readText(resolve(io.cwd, file), "the tags file")
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line !== "");
}

function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    return manifest.version;
  } catch {
    return "unknown";
  }
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

const defaultIo = (): CliIo => ({
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  cwd: process.cwd(),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  },
});

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(["dockerfile", "spec.yaml"]);
 * ```
 */
export async function runCli(argv: readonly string[], ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io = { ...defaultIo(), ...ioOverrides };
  let file = "";
  // Build failures carry their code (BUILD_FAILED, UNAVAILABLE, TIMEOUT) so scripts and people can tell them apart.
  let showCode = false;
  try {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(argv);
    } catch (err) {
      throw usageError((err as Error).message);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout(`${USAGE}\n`);
      return CliExitCode.OK;
    }
    if (values.version) {
      io.stdout(`${packageVersion()}\n`);
      return CliExitCode.OK;
    }
    const [command, specFile, ...extra] = positionals;
    if (command === undefined) throw usageError("missing command");
    if (!["validate", "dockerfile", "hash", "canonical", "server", "plan", "build"].includes(command)) {
      throw usageError(`unknown command ${JSON.stringify(command)}`);
    }
    if (specFile === undefined) throw usageError(`${command} needs a spec file (or - for standard input)`);
    if (extra.length > 0) throw usageError(`unexpected arguments: ${extra.join(" ")}`);
    let maxInlineBytes: number | undefined;
    if (values["max-inline-bytes"] !== undefined) {
      maxInlineBytes = Number(values["max-inline-bytes"]);
      if (!Number.isInteger(maxInlineBytes) || maxInlineBytes < 0) {
        throw usageError("--max-inline-bytes must be a non-negative integer");
      }
    }
    if (command !== "plan" && (values.existing ?? values["no-versioned"]) !== undefined) {
      throw usageError("--existing and --no-versioned only apply to plan");
    }
    if (!["plan", "build"].includes(command) && (values.repository ?? values.force) !== undefined) {
      throw usageError("--repository and --force only apply to plan and build");
    }
    if (
      command !== "build" &&
      (values.engine ?? values["engine-address"] ?? values["timeout-ms"]) !== undefined
    ) {
      throw usageError("--engine, --engine-address and --timeout-ms only apply to build");
    }
    if (command === "build") checkBuildValues(values);
    file = specFile;
    showCode = command === "build";
    const spec = await loadSpec(specFile, io);
    switch (command) {
      case "validate": {
        renderResolved(spec, { maxInlineBytes: maxInlineBytes ?? DEFAULT_MAX_INLINE_BYTES });
        const server =
          spec.server === undefined
            ? "none"
            : spec.server.kind === "openhands"
              ? "openhands"
              : spec.server.install.strategy;
        io.stdout(`ok: ${specFile} is a valid image spec (${spec.steps.length} steps, server: ${server})\n`);
        break;
      }
      case "dockerfile":
        io.stdout(toDockerfile(spec, { maxInlineBytes }));
        break;
      case "hash":
        io.stdout(json(tagsOf(spec)));
        break;
      case "canonical":
        io.stdout(`${stableStringify(spec)}\n`);
        break;
      case "server":
        io.stdout(json(serverLaunch(spec)));
        break;
      case "plan": {
        if (values.existing === undefined)
          throw usageError("plan needs --existing <tags.txt> (an empty file is fine)");
        const existing = readTagsFile(values.existing, io);
        const plan = resolveBuildPlan(spec, existing, {
          maxInlineBytes,
          repository: values.repository,
          forceRebuild: values.force,
          useVersioned: values["no-versioned"] === true ? false : undefined,
        });
        io.stdout(json(plan));
        break;
      }
      case "build":
        await runBuildCommand(spec, values, io, maxInlineBytes);
        break;
    }
    return CliExitCode.OK;
  } catch (err) {
    if (err instanceof CliUsageError) {
      io.stderr(`agent-runtime-image: ${err.message}\nRun agent-runtime-image --help for usage.\n`);
      return CliExitCode.USAGE;
    }
    if (err instanceof ImageBuilderError) {
      const code = showCode ? `${err.code}: ` : "";
      io.stderr(`agent-runtime-image: ${file ? `${file}: ` : ""}${code}${err.message}\n`);
      return CliExitCode.FAILED;
    }
    io.stderr(
      `agent-runtime-image: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return CliExitCode.FAILED;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      existing: { type: "string" },
      repository: { type: "string" },
      force: { type: "boolean" },
      "no-versioned": { type: "boolean" },
      "max-inline-bytes": { type: "string" },
      engine: { type: "string" },
      "engine-address": { type: "string" },
      "timeout-ms": { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "v" },
    },
  });
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined || !import.meta.url) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
