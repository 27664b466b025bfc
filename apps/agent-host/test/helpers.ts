import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ModalEmulator } from "@agent-runtime/modal-emulator";
import { type Logger, type PluginRegistry, silentLogger } from "@agent-runtime/runtime-core";
import { expect } from "vitest";
import { emulatedModalOptions } from "../src/cli/emulator.js";
import { parseHostConfig } from "../src/config.js";
import { AgentHost } from "../src/host.js";
import type { HostConfig } from "../src/options.js";
import { type RunningServer, startServer } from "../src/server.js";

/** A JSON response body: tests check its shape with assertions. */
// biome-ignore lint/suspicious/noExplicitAny: API bodies are checked field by field in the tests
export type Json = any;

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix = "agent-host-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A host with its API on 127.0.0.1 (random port), and a small JSON client for it. */
export interface TestServer {
  host: AgentHost;
  server: RunningServer;
  url: string;
  /** The bearer token `request` sends (the token file's content unless one was given); undefined with auth off. */
  token: string | undefined;
  request(
    method: string,
    path: string,
    options?: { body?: unknown; rawBody?: string; token?: string | null; headers?: Record<string, string> },
  ): Promise<{ status: number; body: Json; headers: Headers }>;
  /** Stops the server and the host (sessions closed unless `keepSessions`). */
  stop(options?: { keepSessions?: boolean }): Promise<void>;
}

/**
 * Starts a host and its server on 127.0.0.1 with `config` over sensible test defaults. The state directory is
 * the database's directory (or a new temporary one), never the user's; the API token is the one the server
 * created there (or `token`), and `request` sends it.
 */
export async function startTestServer(
  config: HostConfig & { token?: string; logger?: Logger; registry?: PluginRegistry } = {},
): Promise<TestServer> {
  const { token: given, logger, registry, ...rest } = config;
  const dbPath = rest.storage?.path;
  const ownState =
    rest.storage?.stateDir === undefined && (dbPath === undefined || dbPath === ":memory:")
      ? tempDir("agent-host-state-")
      : undefined;
  const stateDir = rest.storage?.stateDir ?? ownState?.path ?? dirname(dbPath!);
  const resolved = parseHostConfig({
    ...rest,
    runtime: {
      plugin: "local",
      ...rest.runtime,
      options: {
        startupTimeoutMs: 20_000,
        isolation: process.env.AGENT_HOST_TEST_ISOLATION ?? "none",
        ...rest.runtime?.options,
      },
    },
    server: { host: "127.0.0.1", port: 0, ...rest.server },
    secrets: { enabled: false, ...rest.secrets },
    storage: { ...rest.storage, stateDir },
  });
  const host = await AgentHost.open(resolved, {
    logger: logger ?? silentLogger,
    env: {},
    ...(registry ? { registry } : {}),
  });
  const server = await startServer(host, given === undefined ? { env: {} } : { token: given });
  const token = given ?? (server.tokenFile ? readFileSync(server.tokenFile, "utf8").trim() : undefined);
  const request: TestServer["request"] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    const bearer = options.token === undefined ? token : options.token;
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    let body: string | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    host,
    server,
    url: server.url,
    token,
    request,
    async stop(options = {}) {
      await server.close();
      await host.close({ closeSessions: !options.keepSessions });
      ownState?.cleanup();
    },
  };
}

/** Waits for a session to leave `starting` and asserts it is ready. */
export async function readySession(t: TestServer, body: unknown = {}): Promise<string> {
  const created = await t.request("POST", "/v1/sessions", { body });
  if (created.status !== 201)
    throw new Error(`create failed: ${created.status} ${JSON.stringify(created.body)}`);
  const got = await t.request("GET", `/v1/sessions/${created.body.id}?waitMs=30000`);
  if (got.body.status !== "ready") throw new Error(`session not ready: ${JSON.stringify(got.body)}`);
  return created.body.id as string;
}

/** Submits a shell command and long-polls its task to the end. */
export async function runCommand(t: TestServer, sessionId: string, command: string): Promise<Json> {
  const sub = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
    body: { action: "run", args: { command, blocking: true } },
  });
  if (sub.status !== 202) throw new Error(`submit failed: ${sub.status} ${JSON.stringify(sub.body)}`);
  const done = await t.request("GET", `/v1/tasks/${sub.body.id}?waitMs=30000`);
  return done.body;
}

/** A writable stream that keeps what is written to it, and that text. */
export function capture(): { stream: { write(t: string): boolean }; text: () => string } {
  let text = "";
  return {
    stream: {
      write: (t: string) => {
        text += t;
        return true;
      },
    },
    text: () => text,
  };
}

/** The modal runtime plugin's options against `emulator` as `serve --emulator` makes them (on node 20), `extra` over them. */
export function emulatorRuntimeOptions(
  emulator: ModalEmulator,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return emulatedModalOptions(emulator, { image: "node:20-bookworm-slim", ...extra });
}

/** A client whose `request` takes the JSON body itself (not TestServer's options). */
export interface BodyClient {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
}

/** Runs `command` as a blocking run action in the session and returns the finished task (the submit must be 202). */
export async function runBlocking(t: BodyClient, sessionId: string, command: string): Promise<Json> {
  const sub = await t.request("POST", `/v1/sessions/${sessionId}/actions`, {
    action: "run",
    args: { command, blocking: true },
  });
  expect(sub.status, JSON.stringify(sub.body)).toBe(202);
  return (await t.request("GET", `/v1/tasks/${sub.body.id}?waitMs=30000`)).body;
}
