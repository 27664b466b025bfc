import { InvalidArgumentError } from "@agent-runtime/runtime-core";
import type { ActionServerOptions } from "./options.js";

/** Usage text printed on bad arguments. */
export const USAGE = `Usage: agent-runtime-action-server <port> --working-dir <dir> [--host <addr>] [--socket <path>] [--username <name>] [--user-id <uid>] [--env-from-stdin]

  <port>                 TCP port; 0 picks a free one
  --working-dir <dir>    where the shell starts (created if missing)
  --host <addr>          address to listen on (default 0.0.0.0)
  --socket <path>        listen on this unix socket instead of TCP
  --username <name>      user name reported in command metadata
  --user-id <uid>        uid shells run as (honoured when started as root)
  --env-from-stdin       first read one JSON object of environment variables from stdin, to its end (at most
                         1 MiB, within 30 s): secrets and SESSION_API_KEY that must not sit in a stored
                         environment, such as a container's
  --plugins ..., --enable-browser, --no-enable-browser, --browsergym-eval-env <x>
                         accepted for OpenHands compatibility and ignored

Environment: SESSION_API_KEY (turns auth on), NO_CHANGE_TIMEOUT_SECONDS (default 10),
ACTION_SERVER_MAX_UPLOAD_BYTES (default 1073741824), ACTION_SERVER_MAX_JSON_BODY_BYTES (default 67108864),
ACTION_SERVER_MAX_UNZIPPED_BYTES (default 1073741824), ACTION_SERVER_MAX_ZIP_ENTRIES (default 100000),
ACTION_SERVER_MAX_ZIP_RATIO (default 200), ACTION_SERVER_ZIP_LEVEL (0-9, default 0),
ACTION_SERVER_SHELL (default bash), ACTION_SERVER_PYTHON (default python3),
ACTION_SERVER_LOG_LEVEL (debug|info|warn|error, default info).

Prints {"event":"listening","port":<n>,"pid":<n>} on stdout once ready (with "socket":<path> for --socket).`;

/**
 * Turns the command line and environment into server options. Throws INVALID_ARGUMENT listing every problem
 * (the bin prints it with the usage and exits 2).
 */
export function parseCliArgs(
  argv: readonly string[],
  env: Record<string, string | undefined>,
): ActionServerOptions {
  const issues: string[] = [];
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    // --env-from-stdin is read by the bin before these arguments are parsed (see stdin-env.ts).
    if (name === "enable-browser" || name === "no-enable-browser" || name === "env-from-stdin") continue;
    if (name === "plugins") {
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) i++;
      continue;
    }
    if (!["working-dir", "host", "socket", "username", "user-id", "browsergym-eval-env"].includes(name)) {
      issues.push(`--${name}: unknown option`);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith("--"))) {
      issues.push(`--${name}: needs a value`);
      if (value?.startsWith("--")) i--;
      continue;
    }
    flags[name] = value;
  }
  if (positional.length !== 1)
    issues.push(`<port>: expected exactly one port number, got ${positional.length}`);
  const port = Number(positional[0]);
  if (positional.length === 1 && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    issues.push(`<port>: expected an integer 0-65535, got ${JSON.stringify(positional[0])}`);
  }
  if (!flags["working-dir"]) issues.push("--working-dir: required (the directory the shell starts in)");
  const options: ActionServerOptions = { workingDir: flags["working-dir"] ?? "", port };
  if (flags.host) options.host = flags.host;
  if (flags.socket) options.socketPath = flags.socket;
  if (flags.username) options.username = flags.username;
  if (flags["user-id"] !== undefined) {
    const uid = Number(flags["user-id"]);
    if (!Number.isInteger(uid) || uid < 0)
      issues.push(`--user-id: expected a non-negative integer, got ${JSON.stringify(flags["user-id"])}`);
    else options.userId = uid;
  }
  if (env.SESSION_API_KEY) options.sessionApiKey = env.SESSION_API_KEY;
  const seconds = numberFromEnv(env, "NO_CHANGE_TIMEOUT_SECONDS", issues, false);
  if (seconds !== undefined) options.noChangeTimeoutMs = seconds * 1000;
  const maxUpload = numberFromEnv(env, "ACTION_SERVER_MAX_UPLOAD_BYTES", issues, false);
  if (maxUpload !== undefined) options.maxUploadBytes = maxUpload;
  const maxJson = numberFromEnv(env, "ACTION_SERVER_MAX_JSON_BODY_BYTES", issues, false);
  if (maxJson !== undefined) options.maxJsonBodyBytes = maxJson;
  const maxUnzipped = numberFromEnv(env, "ACTION_SERVER_MAX_UNZIPPED_BYTES", issues, false);
  if (maxUnzipped !== undefined) options.maxUnzippedBytes = maxUnzipped;
  const maxEntries = numberFromEnv(env, "ACTION_SERVER_MAX_ZIP_ENTRIES", issues, false);
  if (maxEntries !== undefined) options.maxZipEntries = maxEntries;
  const maxRatio = numberFromEnv(env, "ACTION_SERVER_MAX_ZIP_RATIO", issues, false);
  if (maxRatio !== undefined) options.maxZipCompressionRatio = maxRatio;
  const zipLevel = numberFromEnv(env, "ACTION_SERVER_ZIP_LEVEL", issues, true);
  if (zipLevel !== undefined) options.zipLevel = zipLevel;
  if (env.ACTION_SERVER_SHELL) options.shellPath = env.ACTION_SERVER_SHELL;
  if (env.ACTION_SERVER_PYTHON) options.pythonPath = env.ACTION_SERVER_PYTHON;
  if (issues.length > 0)
    throw new InvalidArgumentError(`Invalid arguments:\n  ${issues.join("\n  ")}`, issues);
  return options;
}

function numberFromEnv(
  env: Record<string, string | undefined>,
  name: string,
  issues: string[],
  allowZero: boolean,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    issues.push(
      `${name}: expected a ${allowZero ? "non-negative" : "positive"} number, got ${JSON.stringify(raw)}`,
    );
    return undefined;
  }
  return n;
}
