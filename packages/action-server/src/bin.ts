#!/usr/bin/env node
import { isRuntimeError, type Logger } from "@agent-runtime/runtime-core";
import { parseCliArgs, USAGE } from "./cli.js";
import { startActionServer } from "./start-server.js";
import { ENV_FROM_STDIN_FLAG, readStdinEnv } from "./stdin-env.js";

const LEVELS = ["debug", "info", "warn", "error"] as const;

/** Logs to stderr as one JSON object per line, at or above `ACTION_SERVER_LOG_LEVEL`. Never given the key. */
function stderrLogger(level: string | undefined): Logger {
  const min = Math.max(0, LEVELS.indexOf((level ?? "info") as (typeof LEVELS)[number]));
  const log =
    (lvl: (typeof LEVELS)[number]) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (LEVELS.indexOf(lvl) < min) return;
      process.stderr.write(
        `${JSON.stringify({ level: lvl, time: new Date().toISOString(), msg: message, ...fields })}\n`,
      );
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

async function main(): Promise<void> {
  let options: ReturnType<typeof parseCliArgs>;
  try {
    // Secrets a launcher would not store in the process's recorded environment (a container's is shown by
    // `docker inspect`) come on stdin; shells then inherit them as if they were in the environment.
    if (process.argv.includes(ENV_FROM_STDIN_FLAG))
      Object.assign(process.env, await readStdinEnv(process.stdin));
    options = parseCliArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(
      `agent-runtime-action-server: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`,
    );
    process.exit(2);
  }
  const logger = stderrLogger(process.env.ACTION_SERVER_LOG_LEVEL);
  let server: Awaited<ReturnType<typeof startActionServer>>;
  try {
    server = await startActionServer({ ...options, logger });
  } catch (err) {
    const message = isRuntimeError(err)
      ? `${err.code}: ${err.message}`
      : err instanceof Error
        ? err.message
        : String(err);
    process.stderr.write(`agent-runtime-action-server: ${message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal });
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.stdout.write(
    `${JSON.stringify({ event: "listening", port: server.port, ...(server.socketPath ? { socket: server.socketPath } : {}), pid: process.pid })}\n`,
  );
}

void main();
