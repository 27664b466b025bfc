import type { AddressInfo } from "node:net";
import { isIP } from "node:net";
import { join } from "node:path";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { createAdaptorServer } from "@hono/node-server";
import { createApp } from "./api/app.js";
import type { AgentHost } from "./host.js";
import { loadOrCreateToken, MIN_TOKEN_LENGTH, TOKEN_FILE_NAME } from "./token.js";

/** True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (h.startsWith("::ffff:")) return h.slice(7).startsWith("127.");
  return false;
}

/** A listening API server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  readonly port: number;
  /** True when requests must carry the bearer token. */
  readonly authRequired: boolean;
  /** The token file in use (`<stateDir>/token`); undefined when the token came from the environment or an option, or auth is off. */
  readonly tokenFile: string | undefined;
  /** True when this start created the token file (the first start): tell the user how to use it. */
  readonly tokenCreated: boolean;
  /** Stops accepting connections and ends open ones (event streams included). Does not close the host. */
  close(): Promise<void>;
}

/** Options of {@link startServer}; defaults come from the host's `server` config. */
export interface StartServerOptions {
  host?: string;
  port?: number;
  /** Bearer token; default: the value of the variable named by `server.tokenEnv`, else the token file. */
  token?: string;
  /** Require a token; `false` serves without one (loopback only, with a warning). @default server.auth */
  auth?: boolean;
  /** Environment to read the token from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Serves a host's API over HTTP, closed by default: every `/v1` route needs the bearer token, also on loopback.
 * The token is `options.token`, else the variable named by `server.tokenEnv`, else the content of
 * `<stateDir>/token` (created on first start, mode 0600; `tokenCreated` says so). With auth off
 * (`server.auth: false`) it logs a warning and refuses (UNAUTHORIZED) to bind anything but loopback.
 * Fails with UNAVAILABLE naming the address when the port is taken.
 */
export async function startServer(host: AgentHost, options: StartServerOptions = {}): Promise<RunningServer> {
  const bind = options.host ?? host.config.server.host;
  const port = options.port ?? host.config.server.port;
  const auth = options.auth ?? host.config.server.auth;
  const tokenEnv = host.config.server.tokenEnv;
  const fromEnv = (options.env ?? process.env)[tokenEnv];
  let token = options.token ?? (fromEnv && fromEnv.length > 0 ? fromEnv : undefined);
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `${tokenEnv}: the token must be at least ${MIN_TOKEN_LENGTH} characters long (use e.g. \`openssl rand -hex 32\`).`,
    );
  }
  let tokenFile: string | undefined;
  let tokenCreated = false;
  if (token === undefined && auth) {
    const file = loadOrCreateToken(join(host.ensureStateDir(), TOKEN_FILE_NAME));
    token = file.token;
    tokenFile = file.path;
    tokenCreated = file.created;
  }
  if (token === undefined && !isLoopback(bind)) {
    throw new RuntimeError(
      "UNAUTHORIZED",
      `Refusing to serve on ${bind} without a token: anyone who can reach it could run commands. Turn auth back on (drop --no-auth / server.auth: false), or set ${tokenEnv} to a long random value, or bind 127.0.0.1.`,
    );
  }
  if (token === undefined) {
    host.logger.warn(
      `API auth is off (--no-auth / server.auth: false): any process on this machine that can reach ${bind}:${port}, sandboxed code included, can drive every session. Drop the flag to require the token.`,
    );
  }
  const { app } = createApp(host, token === undefined ? {} : { token });
  const server = createAdaptorServer({ fetch: app.fetch });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new RuntimeError(
          "UNAVAILABLE",
          err.code === "EADDRINUSE"
            ? `Port ${port} on ${bind} is in use; pick another with --port (or server.port), or stop what holds it.`
            : `Cannot listen on ${bind}:${port}: ${err.message}`,
          { cause: err },
        ),
      );
    };
    server.once("error", onError);
    server.listen(port, bind, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostPart}:${address.port}`,
    port: address.port,
    authRequired: token !== undefined,
    tokenFile,
    tokenCreated,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        const s = server as { closeAllConnections?: () => void };
        s.closeAllConnections?.();
      });
      return closing;
    },
  };
}
