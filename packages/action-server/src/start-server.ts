import { chownSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname, userInfo } from "node:os";
import { resolve } from "node:path";
import { parseOrThrow, quietLogger, RuntimeError } from "@agent-runtime/runtime-core";
import { ActionExecutor } from "./actions/executor.js";
import { createRouter } from "./http/router.js";
import { ServerInfoProbe } from "./http/server-info.js";
import { type ActionServerOptions, ActionServerOptionsSchema } from "./options.js";

/** A running action server. */
export interface ActionServerHandle {
  /** The port it listens on (the chosen one when started with port 0). */
  readonly port: number;
  /** A base URL to reach it (`http://127.0.0.1:<port>` when listening on all interfaces). */
  readonly url: string;
  /** The unix socket it listens on, when started with `socketPath` (then `port` is 0). */
  readonly socketPath?: string;
  /** Pid of the main shell (diagnostics). */
  readonly shellPid: number | undefined;
  /** Stops accepting connections, drops open ones and kills every shell process group. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the action server: validates options, creates the working directory, starts the shell, then listens.
 * Resolves once `/alive` can answer `{"status":"ok"}`.
 *
 * @example
 * ```ts
 * const server = await startActionServer({ workingDir: "/workspace", host: "127.0.0.1", sessionApiKey: key });
 * // ... drive it with ActionExecutionClient at server.url ...
 * await server.close();
 * ```
 */
export async function startActionServer(options: ActionServerOptions): Promise<ActionServerHandle> {
  const opts = parseOrThrow(ActionServerOptionsSchema, options, "action-server options");
  const logger = opts.logger ?? quietLogger;
  const workingDir = resolve(opts.workingDir);
  try {
    mkdirSync(workingDir, { recursive: true });
  } catch (cause) {
    throw new RuntimeError("INVALID_ARGUMENT", `workingDir: cannot create ${workingDir} (${String(cause)})`, {
      cause,
    });
  }
  const identity = resolveIdentity(opts.userId, opts.username, logger.warn.bind(logger));
  if (identity.switchTo) {
    try {
      chownSync(workingDir, identity.switchTo.uid, identity.switchTo.gid);
    } catch (err) {
      logger.warn("could not give the working directory to the sandbox user", {
        workingDir,
        error: String(err),
      });
    }
  }
  const env = shellEnvironment(opts.shellEnv ?? process.env, identity);
  const executor = new ActionExecutor({
    shell: {
      shellPath: opts.shellPath,
      env,
      ...(identity.switchTo ? { uid: identity.switchTo.uid, gid: identity.switchTo.gid } : {}),
    },
    workingDir,
    username: identity.username,
    hostname: hostname(),
    noChangeTimeoutMs: opts.noChangeTimeoutMs,
    pythonPath: opts.pythonPath,
    env,
    owner: identity.switchTo,
    logger,
  });
  await executor.start();
  const probe = new ServerInfoProbe(Date.now(), workingDir, () => executor.terminal);
  const server = createServer(
    { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 },
    createRouter({
      executor,
      probe,
      workingDir,
      sessionApiKey: opts.sessionApiKey,
      maxUploadBytes: opts.maxUploadBytes,
      maxJsonBodyBytes: opts.maxJsonBodyBytes,
      maxDrainBytes: opts.maxDrainBytes,
      zipLimits: {
        maxUnzippedBytes: opts.maxUnzippedBytes,
        maxEntries: opts.maxZipEntries,
        maxCompressionRatio: opts.maxZipCompressionRatio,
      },
      zipLevel: opts.zipLevel,
      mcpServers: { value: [] },
      logger,
    }),
  );
  try {
    await new Promise<void>((res, rej) => {
      server.once("error", rej);
      const onListening = () => {
        server.off("error", rej);
        res();
      };
      if (opts.socketPath) {
        rmSync(opts.socketPath, { force: true });
        server.listen(opts.socketPath, onListening);
      } else server.listen(opts.port, opts.host, onListening);
    });
  } catch (cause) {
    executor.close();
    const where = opts.socketPath ?? `${opts.host}:${opts.port}`;
    throw new RuntimeError("UNAVAILABLE", `Cannot listen on ${where}: ${String(cause)}`, {
      cause,
    });
  }
  const port = opts.socketPath ? 0 : (server.address() as AddressInfo).port;
  const host = opts.host === "0.0.0.0" || opts.host === "::" ? "127.0.0.1" : opts.host;
  const url = opts.socketPath
    ? "http://localhost"
    : `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  logger.info("action server listening", { port, workingDir, auth: opts.sessionApiKey !== undefined });
  let closing: Promise<void> | undefined;
  return {
    port,
    url,
    ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
    get shellPid() {
      return executor.shellPid;
    },
    close() {
      closing ??= new Promise<void>((res) => {
        executor.close();
        server.close(() => res());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

interface Identity {
  username: string;
  /** Set when running as root for another uid: shells run as it and new files belong to it. */
  switchTo: { uid: number; gid: number } | undefined;
  home: string | undefined;
}

function resolveIdentity(
  userId: number | undefined,
  username: string | undefined,
  warn: (m: string, f?: Record<string, unknown>) => void,
): Identity {
  const current = userInfo();
  const uid = process.getuid?.() ?? current.uid;
  if (userId === undefined || userId === uid)
    return { username: username ?? current.username, switchTo: undefined, home: undefined };
  const entry = passwdEntry(userId);
  if (uid !== 0) {
    warn("user-id differs from the current user but the server is not root: shells run as the current user", {
      requested: userId,
      current: uid,
    });
    return { username: username ?? current.username, switchTo: undefined, home: undefined };
  }
  return {
    username: username ?? entry?.name ?? String(userId),
    switchTo: { uid: userId, gid: entry?.gid ?? userId },
    home: entry?.home,
  };
}

function passwdEntry(uid: number): { name: string; gid: number; home: string } | undefined {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (Number(f[2]) === uid && f[0]) return { name: f[0], gid: Number(f[3]), home: f[5] ?? "/" };
    }
  } catch {
    // no passwd file
  }
  return undefined;
}

/** The shells' environment: the given one without the session key, `SHLVL=1`, unbuffered Python output. */
function shellEnvironment(
  source: Record<string, string | undefined>,
  identity: Identity,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined) env[k] = v;
  delete env.SESSION_API_KEY;
  env.SHLVL = "1";
  env.PYTHONUNBUFFERED ??= "1";
  if (identity.switchTo) {
    env.USER = identity.username;
    env.LOGNAME = identity.username;
    if (identity.home) env.HOME = identity.home;
  }
  return env;
}
