#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isRuntimeError, type LogFields, type Logger, toRuntimeError } from "@agent-runtime/runtime-core";
import { runDemo } from "./cli/demo.js";
import { startEmulatedModal } from "./cli/emulator.js";
import type { ProgressStream } from "./cli/progress.js";
import { loadScript, runScript } from "./cli/script.js";
import { type ComposedPlugins, composePlugins } from "./compose.js";
import { type ConfigOverrides, loadHostConfig, parseHostConfig } from "./config.js";
import { AgentHost } from "./host.js";
import type { HostConfig, ResolvedHostConfig } from "./options.js";
import { startServer } from "./server.js";
import { VERSION } from "./version.js";

/** Where the CLI writes; the process streams by default. */
export interface CliIo {
  stdout: ProgressStream;
  stderr: ProgressStream;
  env: Readonly<Record<string, string | undefined>>;
}

const USAGE = `agent-host ${VERSION}: run agent actions in sandboxes

Usage:
  agent-host demo  [--runtime local|docker|modal] [--emulator] [--isolation auto|none|bubblewrap] [--config file]
  agent-host run   <script.yaml> [--runtime name] [--emulator] [--config file] [--verbose] [--follow]
  agent-host serve [--config file] [--runtime name] [--emulator] [--host 127.0.0.1] [--port 8787]
                   [--state-dir dir] [--db file] [--no-auth]
  agent-host --help | --version
  Every command also takes --log-level debug|info|warn|error.

Commands:
  demo    Build a small project in a sandbox, run its tests (one fails), fix the bug with an edit,
          run them again (all pass), and print the timings and the cost. No set-up needed.
  run     Run a scripted agent: a YAML/JSON list of actions with expectations. Exit code 1 when one fails.
  serve   Serve the HTTP API (OpenAPI at /openapi.json). Every /v1 route needs a bearer token, also on
          loopback: the content of <state dir>/token (created on first start, mode 0600), or the value
          of AGENT_HOST_TOKEN (the variable named by server.tokenEnv) when that is set.

Options:
  --config <file>    Host configuration (YAML or JSON): runtime plugin and options, secrets, cost, server.
  --runtime <name>   Runtime plugin: local (default), docker, modal, or a module exporting a runtime plugin.
                     docker runs each sandbox in a container on Docker or Podman: the engine is
                     DOCKER_HOST (or runtime.options.engine in --config), the image's base
                     runtime.options.baseImage (default node:24-bookworm-slim; built once, then cached).
  --emulator         Start modal-emulator in-process and run on the modal runtime against it (offline).
                     Without it, --runtime modal talks to MODAL_SERVER_URL (an emulator started elsewhere:
                     also set MODAL_TOKEN_ID, MODAL_TOKEN_SECRET and NODE_EXTRA_CA_CERTS as it prints).
  --log-level <lvl>  debug, info, warn or error, on stderr. Default: info for serve, warn for demo and run
                     (AGENT_HOST_LOG_LEVEL when set). info logs each sandbox: starting, created, ready
                     (startMs), failed (reason), closed; debug adds every runtime status change.
  --isolation <mode> Local sandboxes: auto (bubblewrap when it works here), none, bubblewrap.
  --verbose          run: print whole observations.
  --follow           run: print each command's output live, as the sandbox prints it (secrets redacted).
  --state-dir <dir>  serve: private state directory (mode 0700): database, cost ledger, token.
                     Default: $XDG_STATE_HOME/agent-host, else ~/.local/state/agent-host.
  --db <file>        serve: SQLite database. Default: <state dir>/agent-host.db.
  --no-auth          serve: no token (loopback only; warns at every start). Any local process,
                     sandboxed code included, can then drive every session.

Exit codes: 0 success, 1 failure (a step, a test or the runtime), 2 invalid usage or configuration.`;

class UsageError extends Error {}

/** Levels of `--log-level`, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `--log-level`, else `AGENT_HOST_LOG_LEVEL`, else the command's default. */
function logLevelOf(flag: string | undefined, env: CliIo["env"], fallback: LogLevel): LogLevel {
  const [value, source] =
    flag !== undefined ? [flag, "--log-level"] : [env.AGENT_HOST_LOG_LEVEL, "AGENT_HOST_LOG_LEVEL"];
  if (value === undefined || value === "") return fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new UsageError(`${source}: expected debug, info, warn or error, got ${JSON.stringify(value)}`);
  return value as LogLevel;
}

/**
 * A logger on stderr that drops lines below `level`. `serve` writes `<ISO time> <level> message {fields}`;
 * demo and run write `<level>: message {fields}` (warnings as `warning:`) and leave runtime status changes
 * to their progress lines unless the level is debug.
 */
export function cliLogger(stderr: ProgressStream, level: LogLevel, style: "serve" | "cli"): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const line = (lvl: LogLevel) => (message: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(lvl) < min) return;
    if (style === "cli" && level !== "debug" && message.startsWith("runtime status ")) return;
    const rest = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : "";
    stderr.write(
      style === "serve"
        ? `${new Date().toISOString()} ${lvl} ${message}${rest}\n`
        : `${lvl === "warn" ? "warning" : lvl}: ${message}${rest}\n`,
    );
  };
  return { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) > 65535)
    throw new UsageError(`--port: expected a port number 0-65535, got ${JSON.stringify(text)}`);
  return Number(text);
}

interface Flags {
  config?: string;
  runtime?: string;
  emulator?: boolean;
  isolation?: string;
  verbose?: boolean;
  follow?: boolean;
  host?: string;
  port?: string;
  db?: string;
  "state-dir"?: string;
  "no-auth"?: boolean;
  "log-level"?: string;
  help?: boolean;
  version?: boolean;
}

function parse(argv: readonly string[]): {
  command: string | undefined;
  positionals: string[];
  flags: Flags;
} {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        runtime: { type: "string" },
        emulator: { type: "boolean" },
        isolation: { type: "string" },
        verbose: { type: "boolean", short: "v" },
        follow: { type: "boolean", short: "f" },
        host: { type: "string" },
        port: { type: "string", short: "p" },
        db: { type: "string" },
        "state-dir": { type: "string" },
        "no-auth": { type: "boolean" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
    return { command: positionals[0], positionals: positionals.slice(1), flags: values as Flags };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The demo's configuration: the file (if any) with flags applied, and the sandbox's PATH led by this Node. */
function demoConfig(flags: Flags): ResolvedHostConfig {
  const overrides: ConfigOverrides = flags.runtime !== undefined ? { runtime: flags.runtime } : {};
  const base = loadHostConfig(flags.config, overrides);
  if (base.runtime.plugin !== "local") {
    if (flags.isolation !== undefined) throw new UsageError("--isolation applies to the local runtime only");
    return base;
  }
  const options: Record<string, unknown> = { ...base.runtime.options };
  if (flags.isolation !== undefined) {
    if (!["auto", "none", "bubblewrap"].includes(flags.isolation)) {
      throw new UsageError(
        `--isolation: expected auto, none or bubblewrap, got ${JSON.stringify(flags.isolation)}`,
      );
    }
    options.isolation = flags.isolation;
  }
  const env = { ...(options.env as Record<string, string> | undefined) };
  env.PATH ??= `${dirname(process.execPath)}:${process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"}`;
  options.env = env;
  return parseHostConfig({ ...base, runtime: { ...base.runtime, options } } satisfies HostConfig);
}

async function withPlugins<T>(
  config: ResolvedHostConfig,
  io: CliIo,
  level: LogLevel,
  fn: (plugins: ComposedPlugins, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const plugins = await composePlugins(config, { logger: cliLogger(io.stderr, level, "cli") });
  const abort = new AbortController();
  const onSignal = () => {
    io.stderr.write("\ninterrupted: stopping the sandbox...\n");
    abort.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await fn(plugins, abort.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await plugins.close();
  }
}

async function demo(flags: Flags, io: CliIo): Promise<number> {
  const level = logLevelOf(flags["log-level"], io.env, "warn");
  const emulator = flags.emulator ? await startEmulatedModal(demoConfig(flags), io.stdout) : undefined;
  const config = emulator?.config ?? demoConfig(flags);
  try {
    await withPlugins(config, io, level, (plugins, signal) => runDemo(plugins, { out: io.stdout, signal }));
    return 0;
  } finally {
    await emulator?.close();
  }
}

async function run(positionals: string[], flags: Flags, io: CliIo): Promise<number> {
  const file = positionals[0];
  if (!file) throw new UsageError("run: give the script file, e.g. agent-host run examples/hello.yaml");
  if (positionals.length > 1)
    throw new UsageError(`run: one script at a time (got ${positionals.join(", ")})`);
  const level = logLevelOf(flags["log-level"], io.env, "warn");
  const script = loadScript(file);
  const fileConfig = loadHostConfig(
    flags.config,
    flags.runtime !== undefined ? { runtime: flags.runtime } : {},
  );
  const emulator = flags.emulator ? await startEmulatedModal(fileConfig, io.stdout) : undefined;
  const config = emulator?.config ?? fileConfig;
  try {
    const report = await withPlugins(config, io, level, (plugins, signal) =>
      runScript(plugins, script, {
        out: io.stdout,
        verbose: flags.verbose ?? false,
        follow: flags.follow ?? false,
        source: file,
        signal,
      }),
    );
    return report.failed === 0 ? 0 : 1;
  } finally {
    await emulator?.close();
  }
}

async function serve(flags: Flags, io: CliIo): Promise<number> {
  const overrides: ConfigOverrides = {};
  if (flags.host !== undefined) overrides.host = flags.host;
  const port = parsePort(flags.port);
  if (port !== undefined) overrides.port = port;
  if (flags.db !== undefined) overrides.db = flags.db;
  if (flags["state-dir"] !== undefined) overrides.stateDir = flags["state-dir"];
  if (flags["no-auth"]) overrides.auth = false;
  if (flags.runtime !== undefined) overrides.runtime = flags.runtime;
  const level = logLevelOf(flags["log-level"], io.env, "info");
  const fileConfig = loadHostConfig(flags.config, overrides);
  const emulator = flags.emulator ? await startEmulatedModal(fileConfig, io.stdout) : undefined;
  const config = emulator?.config ?? fileConfig;
  const logger = cliLogger(io.stderr, level, "serve");
  let host: AgentHost;
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    host = await AgentHost.open(config, { logger, env: io.env });
  } catch (err) {
    await emulator?.close();
    throw err;
  }
  try {
    server = await startServer(host, { env: io.env });
  } catch (err) {
    await host.close({ closeSessions: false });
    await emulator?.close();
    throw err;
  }
  const auth = !server.authRequired
    ? "OFF (--no-auth): loopback only"
    : server.tokenFile
      ? `bearer token in ${server.tokenFile}`
      : `bearer token from ${config.server.tokenEnv}`;
  io.stdout.write(
    `agent-host ${VERSION} serving on ${server.url} (runtime ${host.backend}, state ${host.stateDir}, database ${host.store.path}, auth ${auth})\n` +
      `OpenAPI: ${server.url}/openapi.json\n`,
  );
  if (server.tokenCreated && server.tokenFile) {
    io.stdout.write(
      `\nCreated the API token ${server.tokenFile} (mode 0600). Every /v1 request needs it:\n` +
        `  curl -H "Authorization: Bearer $(cat ${server.tokenFile})" ${server.url}/v1/sessions\n` +
        `Or set ${config.server.tokenEnv} to a token of your own (at least 16 characters) before starting serve.\n` +
        "This is shown once; the file is reused at every start.\n\n",
    );
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      io.stdout.write(
        `${signal}: shutting down${config.sessions.keepAliveOnShutdown && !emulator ? " (sandboxes stay up for the next start)" : ""}...\n`,
      );
      process.once("SIGINT", () => process.exit(130));
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await server.close();
  // Emulated sandboxes are processes of this host that end with the emulator: close their sessions.
  await host.close(emulator ? { closeSessions: true } : {});
  await emulator?.close();
  return 0;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(
  argv: readonly string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  try {
    const { command, positionals, flags } = parse(argv);
    if (flags.version) {
      io.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (flags.help || command === undefined || command === "help") {
      io.stdout.write(`${USAGE}\n`);
      return command === undefined && !flags.help ? 2 : 0;
    }
    if (
      command !== "serve" &&
      (flags.host !== undefined ||
        flags.port !== undefined ||
        flags.db !== undefined ||
        flags["state-dir"] !== undefined ||
        flags["no-auth"] !== undefined)
    ) {
      throw new UsageError("--host, --port, --db, --state-dir and --no-auth apply to serve only");
    }
    if (flags.follow && command !== "run") throw new UsageError("--follow applies to run only");
    if (flags.emulator) {
      if (flags.runtime === "local")
        throw new UsageError("--emulator emulates Modal: use it with --runtime modal (or without --runtime)");
      flags.runtime ??= "modal";
    }
    switch (command) {
      case "demo":
        if (positionals.length > 0)
          throw new UsageError(`demo takes no arguments (got ${positionals.join(" ")})`);
        return await demo(flags, io);
      case "run":
        return await run(positionals, flags, io);
      case "serve":
        if (positionals.length > 0)
          throw new UsageError(`serve takes no arguments (got ${positionals.join(" ")}); use --config`);
        return await serve(flags, io);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; use demo, run or serve`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`agent-host: ${err.message}\nRun agent-host --help for usage.\n`);
      return 2;
    }
    const e = toRuntimeError(err);
    io.stderr.write(`agent-host: error [${e.code}]: ${e.message}\n`);
    return isRuntimeError(err, "INVALID_ARGUMENT") ? 2 : 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script || typeof import.meta.url !== "string") return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`agent-host: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
