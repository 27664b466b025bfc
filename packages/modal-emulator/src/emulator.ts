// Over 400 lines: the emulator's whole public surface in one place (options, start-up of the CA, the gRPC services and
// the optional container engine, the summaries tests read, close); the RPCs and sandboxes live in their own modules.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEngine } from "@agent-runtime/docker-engine";
import { type Logger, parseOrThrow, quietLogger, RuntimeError } from "@agent-runtime/runtime-core";
import { type Metadata, Server, ServerCredentials } from "@grpc/grpc-js";
import { generateCa, issueServerCertificate } from "./certs.js";
import { ControlPlane } from "./control-plane.js";
import { EngineImageBuilder } from "./engine-images.js";
import { Faults } from "./faults.js";
import { unauthenticated } from "./grpc-errors.js";
import { buildService } from "./grpc-service.js";
import { randomAlnum } from "./ids.js";
import { HostView, type IsolationMode, resolveIsolation } from "./isolation.js";
import { type ModalEmulatorOptions, ModalEmulatorOptionsSchema, strictFromEnv } from "./options.js";
import { loadModalProtos } from "./proto/load.js";
import { type Sandbox, SandboxRegistry } from "./registry.js";
import { authorizeRouterCall, CommandRouter } from "./router.js";
import { GenericStatus } from "./sandbox.js";
import { NamedSecrets } from "./secrets.js";
import { MODAL_REGIONS } from "./strict.js";

/** Name of a `GenericResult.status` value. */
export type GenericStatusName = keyof typeof GenericStatus;

/** A sandbox as {@link ModalEmulator.listSandboxes} reports it. */
export interface SandboxSummary {
  sandboxId: string;
  taskId: string;
  appId: string;
  appName: string;
  name?: string;
  /** Created through `SandboxCreateV2` (the SDK's default without a GPU). */
  v2: boolean;
  tags: Record<string, string>;
  command: string[];
  workdir: string;
  gpu?: string;
  /** Regions it was pinned to (recorded, not enforced). */
  regions: string[];
  createdAt: Date;
  running: boolean;
  /** How it ended (absent while running). */
  result?: { status: GenericStatusName; exitCode: number };
  tunnels: {
    containerPort: number;
    url: string;
    unencrypted?: { host: string; port: number };
    /**
     * Isolation "none": the free host port the sandbox's server was moved to (its command named the port);
     * engine mode: the port published on 127.0.0.1.
     */
    hostPort?: number;
  }[];
  /** Host pid of the sandbox's main process (bwrap's under bwrap). */
  pid?: number;
  /**
   * The sandbox's root directory on the host (absolute sandbox paths outside the host view live here); `""` for
   * a container sandbox.
   */
  root: string;
  /** Engine mode: the id of the sandbox's container (until it is removed). */
  containerId?: string;
}

/** A running emulator. Stop it with {@link ModalEmulator.close}. */
export interface ModalEmulator {
  /** Control-plane URL for `MODAL_SERVER_URL` (`http://127.0.0.1:<port>`). */
  readonly serverUrl: string;
  /** Command-router URL advertised to the SDK (`https://127.0.0.1:<port>`; spoken in plaintext). */
  readonly routerUrl: string;
  /** Token id clients must send (`MODAL_TOKEN_ID`). */
  readonly tokenId: string;
  /** Token secret clients must send (`MODAL_TOKEN_SECRET`); left out of `JSON.stringify`. */
  readonly tokenSecret: string;
  /** Path of the CA certificate (PEM) that signs tunnel certificates: trust it to use `tunnel.url`. */
  readonly caCertPath: string;
  /** The CA certificate (PEM). */
  readonly caCertPem: string;
  /** How sandboxes are isolated in this emulator (local processes; not used with `sandboxEngine`). */
  readonly isolation: IsolationMode;
  /** The container engine sandboxes run in (the `sandboxEngine` option), or undefined for local processes. */
  readonly sandboxEngine: { kind: "docker"; address: string } | undefined;
  /** Whether strict mode is on (the `strict` option, or `MODAL_EMULATOR_STRICT`). */
  readonly strict: boolean;
  /** Directory with sandbox roots, the CA and the protos. */
  readonly stateDir: string;
  /** Fault injection. */
  readonly faults: Faults;
  /** Named secrets served to `client.secrets.fromName`. */
  readonly namedSecrets: NamedSecrets;
  /**
   * Environment for a client process: `MODAL_SERVER_URL`, `MODAL_TOKEN_ID`, `MODAL_TOKEN_SECRET`, and
   * `NODE_EXTRA_CA_CERTS` (the CA path) so Node trusts tunnel certificates.
   */
  env(): Record<string, string>;
  /** Every sandbox the emulator knows (running ones and recently finished ones). */
  listSandboxes(): SandboxSummary[];
  /** Kills every sandbox process group it started, stops the servers, removes its temporary state. */
  close(): Promise<void>;
}

function hashOf(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function sameSecret(given: unknown, expected: string): boolean {
  return typeof given === "string" && timingSafeEqual(hashOf(given), hashOf(expected));
}

function bind(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
}

function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

function summarize(sb: Sandbox): SandboxSummary {
  const statusName = (code: number): GenericStatusName =>
    (Object.entries(GenericStatus).find(([, v]) => v === code)?.[0] as GenericStatusName | undefined) ??
    "UNSPECIFIED";
  const s = sb.spec;
  return {
    sandboxId: s.sandboxId,
    taskId: s.taskId,
    appId: s.appId,
    appName: s.appName,
    name: s.name,
    v2: s.v2,
    tags: Object.fromEntries(s.tags),
    command: [...s.command],
    workdir: s.workdir,
    gpu: s.gpu,
    regions: [...s.regions],
    createdAt: new Date(s.createdAt * 1000),
    running: sb.running,
    result: sb.result ? { status: statusName(sb.result.status), exitCode: sb.result.exitcode } : undefined,
    tunnels: sb.tunnels.map((t) => ({
      containerPort: t.containerPort,
      url: `https://${urlHost(t.host)}:${t.port}`,
      ...(t.unencryptedPort !== undefined
        ? { unencrypted: { host: t.unencryptedHost!, port: t.unencryptedPort } }
        : {}),
      ...(sb.hostPortOf(t.containerPort) !== undefined ? { hostPort: sb.hostPortOf(t.containerPort) } : {}),
    })),
    pid: sb.pid,
    root: sb.root,
    ...("containerId" in sb && sb.containerId !== undefined ? { containerId: sb.containerId } : {}),
  };
}

interface EmulatorParts {
  serverUrl: string;
  routerUrl: string;
  tokenId: string;
  tokenSecret: string;
  caCertPath: string;
  caCertPem: string;
  isolation: IsolationMode;
  sandboxEngine: { kind: "docker"; address: string } | undefined;
  strict: boolean;
  stateDir: string;
  faults: Faults;
  namedSecrets: NamedSecrets;
  list: () => SandboxSummary[];
  close: () => Promise<void>;
}

class RunningEmulator implements ModalEmulator {
  readonly serverUrl: string;
  readonly routerUrl: string;
  readonly tokenId: string;
  readonly caCertPath: string;
  readonly caCertPem: string;
  readonly isolation: IsolationMode;
  readonly sandboxEngine: { kind: "docker"; address: string } | undefined;
  readonly strict: boolean;
  readonly stateDir: string;
  readonly faults: Faults;
  readonly namedSecrets: NamedSecrets;
  readonly #parts: EmulatorParts;

  constructor(parts: EmulatorParts) {
    this.#parts = parts;
    this.serverUrl = parts.serverUrl;
    this.routerUrl = parts.routerUrl;
    this.tokenId = parts.tokenId;
    this.caCertPath = parts.caCertPath;
    this.caCertPem = parts.caCertPem;
    this.isolation = parts.isolation;
    this.sandboxEngine = parts.sandboxEngine;
    this.strict = parts.strict;
    this.stateDir = parts.stateDir;
    this.faults = parts.faults;
    this.namedSecrets = parts.namedSecrets;
  }

  // A getter (not an own property) keeps the secret out of console.log and JSON.stringify.
  get tokenSecret(): string {
    return this.#parts.tokenSecret;
  }

  env(): Record<string, string> {
    return {
      MODAL_SERVER_URL: this.serverUrl,
      MODAL_TOKEN_ID: this.tokenId,
      MODAL_TOKEN_SECRET: this.#parts.tokenSecret,
      NODE_EXTRA_CA_CERTS: this.caCertPath,
    };
  }

  listSandboxes(): SandboxSummary[] {
    return this.#parts.list();
  }

  close(): Promise<void> {
    return this.#parts.close();
  }

  toJSON(): object {
    return {
      serverUrl: this.serverUrl,
      routerUrl: this.routerUrl,
      tokenId: this.tokenId,
      isolation: this.isolation,
      ...(this.sandboxEngine ? { sandboxEngine: this.sandboxEngine } : {}),
      strict: this.strict,
    };
  }
}

/** The `sandboxEngine` engine, checked to answer: UNAVAILABLE naming the option otherwise. */
async function connectEngine(address: string | undefined): Promise<DockerEngine> {
  try {
    const engine = new DockerEngine(address !== undefined ? { address } : {});
    await engine.ping();
    return engine;
  } catch (err) {
    throw new RuntimeError(
      "UNAVAILABLE",
      `modal-emulator options: sandboxEngine: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Starts Modal's API on 127.0.0.1: the control plane and the command router (gRPC), sandboxes as local
 * process groups, tunnels behind a TLS proxy with a CA generated at start.
 *
 * @example
 * ```ts
 * const emulator = await startModalEmulator({ secrets: { "my-secret": { TOKEN: "abc" } } });
 * Object.assign(process.env, emulator.env()); // before new ModalClient(): it reads MODAL_SERVER_URL
 * const client = new ModalClient({ tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret });
 * const app = await client.apps.fromName("demo", { createIfMissing: true });
 * const sb = await client.sandboxes.create(app, client.images.fromRegistry("alpine:3.21"), { command: ["cat"] });
 * // ...
 * await emulator.close();
 * ```
 */
export async function startModalEmulator(options: ModalEmulatorOptions = {}): Promise<ModalEmulator> {
  const opts = parseOrThrow(ModalEmulatorOptionsSchema, options, "modal-emulator options");
  const strict = opts.strict ?? strictFromEnv();
  const logger: Logger = opts.logger ?? quietLogger;
  const ownStateDir = opts.stateDir === undefined;
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), "modal-emulator-"));
  mkdirSync(stateDir, { recursive: true });

  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    const isolation = await resolveIsolation(opts.isolation);
    if (opts.isolation === "auto" && isolation.reason && !opts.sandboxEngine) {
      logger.warn(
        `modal-emulator: sandboxes run as plain host processes, without isolation (${isolation.reason}). ` +
          "What cannot be faked: a sandbox's own paths (/workspace, /tmp, /root) live under its root in the " +
          "state dir, so processes see host paths (pwd) and paths inside shell strings are not mapped; " +
          "absolute paths in a command's arguments, the workdir and the filesystem API are mapped.",
      );
    }
    const view = new HostView(isolation.mode, opts.privateDirs, isolation);

    const ca = opts.ca ?? generateCa();
    const caCertPath = join(stateDir, "ca.pem");
    writeFileSync(caCertPath, ca.certPem);
    const tls = issueServerCertificate(ca, {
      dns: ["localhost"],
      ips: [...new Set(["127.0.0.1", "::1", ...(/^[\d.]+$|:/.test(opts.host) ? [opts.host] : [])])],
    });

    const protos = loadModalProtos(join(stateDir, "proto"));
    const jwtKey = randomBytes(32);
    const tokenId = opts.tokenId ?? `ak-${randomAlnum(22)}`;
    const tokenSecret = opts.tokenSecret ?? `as-${randomAlnum(32)}`;
    const shutdown = new AbortController();
    const engine = opts.sandboxEngine ? await connectEngine(opts.sandboxEngine.address) : undefined;

    const registry = new SandboxRegistry({
      view,
      stateDir,
      privateDirs: opts.privateDirs,
      baseEnv: Object.fromEntries(
        opts.passEnv.flatMap((k) => (process.env[k] !== undefined ? [[k, process.env[k]!]] : [])),
      ),
      bindHost: opts.host,
      tls,
      maxOutputBytes: opts.maxSandboxOutputBytes,
      maxFinished: opts.maxFinishedSandboxes,
      keepRoots: opts.keepStateDir,
      strict,
      logger,
      ...(engine ? { engine: { engine, instance: randomAlnum(16).toLowerCase() } } : {}),
    });
    cleanups.push(() => registry.stopAll());
    const faults = new Faults(registry);
    const namedSecrets = new NamedSecrets(opts.secrets);

    let routerUrl = "";
    const controlPlane = new ControlPlane(
      {
        environments: opts.environments,
        imageBuilderVersion: opts.imageBuilderVersion,
        tokenId,
        jwtKey,
        routerUrl: () => routerUrl,
        routerJwtTtlMs: opts.routerJwtTtlMs,
        authTokenTtlMs: opts.authTokenTtlMs,
        listPageSize: opts.listPageSize,
        strict,
        regions: opts.regions ?? MODAL_REGIONS,
        logger,
        shutdown: shutdown.signal,
        ...(engine && opts.sandboxEngine
          ? { imageBuilder: new EngineImageBuilder(engine, opts.sandboxEngine, logger) }
          : {}),
      },
      registry,
      faults,
      namedSecrets,
    );
    const router = new CommandRouter(registry, controlPlane, jwtKey);

    const serverOptions = {
      "grpc.max_receive_message_length": 100 * 1024 * 1024,
      "grpc.max_send_message_length": 100 * 1024 * 1024,
    };
    const cpServer = new Server(serverOptions);
    cpServer.addService(
      protos.modalClient.service,
      buildService(protos.modalClient.service, controlPlane.handlers(), {
        shutdown: shutdown.signal,
        logger,
        before: (method: string, metadata: Metadata) => {
          if (
            !sameSecret(metadata.get("x-modal-token-id")[0], tokenId) ||
            !sameSecret(metadata.get("x-modal-token-secret")[0], tokenSecret)
          ) {
            throw unauthenticated(
              "missing or wrong Modal token: send the emulator's token id and secret (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET)",
            );
          }
          faults.check(method);
        },
      }),
    );
    const routerServer = new Server(serverOptions);
    routerServer.addService(
      protos.taskCommandRouter.service,
      buildService(protos.taskCommandRouter.service, router.handlers(), {
        shutdown: shutdown.signal,
        logger,
        before: (method: string, metadata: Metadata, request: unknown) => {
          faults.check(method);
          authorizeRouterCall(metadata, request, jwtKey);
        },
      }),
    );
    cleanups.push(() => {
      shutdown.abort();
      cpServer.forceShutdown();
      routerServer.forceShutdown();
    });
    const port = await bind(cpServer, opts.host, opts.port);
    const routerPort = await bind(routerServer, opts.host, opts.routerPort);
    const serverUrl = `http://${urlHost(opts.host)}:${port}`;
    routerUrl = `https://${urlHost(opts.host)}:${routerPort}`;
    logger.info("modal-emulator: started", {
      serverUrl,
      routerUrl,
      isolation: isolation.mode,
      strict,
      stateDir,
    });

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        for (const cleanup of cleanups) await cleanup();
        if (ownStateDir && !opts.keepStateDir)
          await rm(stateDir, { recursive: true, force: true, maxRetries: 3 });
        logger.info("modal-emulator: stopped", { serverUrl });
      })();
      return closing;
    };

    const emulator = new RunningEmulator({
      serverUrl,
      routerUrl,
      tokenId,
      tokenSecret,
      caCertPath,
      caCertPem: ca.certPem,
      isolation: isolation.mode,
      sandboxEngine: engine ? { kind: "docker", address: engine.address } : undefined,
      strict,
      stateDir,
      faults,
      namedSecrets,
      list: () => registry.all().map(summarize),
      close,
    });
    return emulator;
  } catch (err) {
    for (const cleanup of cleanups) await cleanup();
    if (ownStateDir) await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
}
