import { randomBytes } from "node:crypto";
import { linkSync, lstatSync, mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ENV_FROM_STDIN_FLAG } from "@agent-runtime/action-server";
import type { ContainerCreateBody, DockerEngine, ExecStream } from "@agent-runtime/docker-engine";
import {
  BaseRuntime,
  LEASE_TAG_KEY,
  type PluginContext,
  type ProvisionedSandbox,
  type ProvisionRequest,
  type ResolvedSessionOverrides,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  type SandboxCostSpec,
} from "@agent-runtime/runtime-core";
import { toDockerRuntimeError } from "./errors.js";
import type { ImageCache, ResolvedImage } from "./image.js";
import { CONTAINER_NAME_PREFIX, LABELS, MANAGED_BY, SOCKET_DIR_IN_CONTAINER } from "./naming.js";
import type { ResolvedDockerRuntimeOptions } from "./options.js";

/** What every runtime of one provider shares. */
export interface DockerServices {
  engine: DockerEngine;
  options: ResolvedDockerRuntimeOptions;
  images: ImageCache;
  /** How the host reaches servers (the option, or the default for this engine). */
  connect: "socket" | "port";
  /** Where per-container state directories live. */
  stateBase: string;
}

/** Fields runtime-docker keeps in a handle's `data`. */
export interface DockerHandleData {
  containerId: string;
  containerName: string;
  connect: "socket" | "port";
  /** Socket mode: the host directory bound at /run/agent-runtime. */
  stateDir?: string;
  /** The image the container runs. */
  image: string;
}

/** Lines of the container's output added to a failed start's error. */
const START_LOG_LINES = 40;
/** How often a running container's state is checked, in ms. */
const WATCH_INTERVAL_MS = 1000;

/**
 * Hands the server its secret environment on stdin (`--env-from-stdin`): one JSON object, then end of input. The
 * engine closes the container's stdin when the attach connection's write side ends; the connection itself is
 * left to the engine to close (dropping it at once could reset it before the engine read the data), and dropped
 * after a minute at most.
 */
function sendSecretEnv(stdin: ExecStream, env: Record<string, string>): Promise<void> {
  const input = stdin.input;
  if (!input) {
    return Promise.reject(
      new RuntimeError(
        "UNAVAILABLE",
        "The container engine did not hijack the attach connection, so the server's secrets cannot go on its stdin; use Docker or Podman's Docker-compatible service.",
      ),
    );
  }
  stdin.output.on("error", () => {});
  stdin.output.resume();
  const drop = setTimeout(() => stdin.close(), 60_000);
  drop.unref();
  stdin.output.once("close", () => clearTimeout(drop));
  return new Promise((resolve, reject) => {
    input.once("error", (err) =>
      reject(
        new RuntimeError(
          "UNAVAILABLE",
          `Writing the server's environment to its stdin failed: ${err.message}`,
        ),
      ),
    );
    input.end(JSON.stringify(env), () => resolve());
  });
}

/** A container name for a session: `ar-<session, made name-safe>-<random>`. */
function containerNameFor(sessionId: string): string {
  const slug = sessionId.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40);
  return `${CONTAINER_NAME_PREFIX}${slug}-${randomBytes(4).toString("hex")}`;
}

/** One Docker sandbox: a container running the action-server. */
export class DockerRuntime extends BaseRuntime {
  readonly #svc: DockerServices;
  readonly #image: ResolvedImage;
  readonly #poolId: string | undefined;
  #container: DockerHandleData | undefined;
  #exit: string | undefined;
  /** The server's command line, for messages. */
  #command = "";
  #watch: NodeJS.Timeout | undefined;

  constructor(init: {
    sessionId: string;
    services: DockerServices;
    image: ResolvedImage;
    capabilities: RuntimeCapabilities;
    context: PluginContext;
    attachTo?: RuntimeHandle;
    overrides?: ResolvedSessionOverrides;
    poolId?: string;
  }) {
    const o = init.services.options;
    super({
      backend: "docker",
      sessionId: init.sessionId,
      capabilities: init.capabilities,
      context: init.context,
      startupTimeoutMs: o.startupTimeoutMs,
      keepAlive: o.keepAlive,
      defaultActionTimeoutMs: o.defaultActionTimeoutMs,
      ...(init.attachTo ? { attachTo: init.attachTo } : {}),
      ...(init.overrides ? { overrides: init.overrides } : {}),
    });
    this.#svc = init.services;
    this.#image = init.image;
    this.#poolId = init.poolId;
  }

  /** The container's id, once created. */
  get containerId(): string | undefined {
    return this.#container?.containerId;
  }

  #cpuCores(): number | undefined {
    return this.overrides.cpuCores ?? this.#svc.options.cpuCores;
  }

  #memoryMiB(): number | undefined {
    return this.overrides.memoryMiB ?? this.#svc.options.memoryMiB;
  }

  protected override costSpec(): SandboxCostSpec {
    return { provider: "docker", cpuCores: this.#cpuCores() ?? 1, memoryMiB: this.#memoryMiB() ?? 1024 };
  }

  protected override deathReason(): string | undefined {
    return this.#exit;
  }

  protected async provision(request: ProvisionRequest): Promise<ProvisionedSandbox> {
    const svc = this.#svc;
    const o = svc.options;
    const image = await svc.images.ensure(this.#image);
    if (request.signal?.aborted) throw new RuntimeError("CANCELLED", "connect() was aborted");
    const name = containerNameFor(this.sessionId);
    const sessionApiKey = randomBytes(24).toString("base64url");
    const socket = svc.connect === "socket";
    // Socket mode: the host directory <stateDir>/run is bound into the container, where the server makes its
    // socket; the host connects through a hard link in <stateDir> itself, which the sandbox cannot reach (see
    // #linkSocket).
    const stateDir = socket ? join(svc.stateBase, name) : undefined;
    const argv = [...this.#image.argv];
    if (socket) argv.push("--socket", `${SOCKET_DIR_IN_CONTAINER}/server.sock`);
    argv.push(ENV_FROM_STDIN_FLAG);
    this.#command = argv.join(" ");
    // The engine stores a container's environment and shows it to anyone who may inspect it: secrets and the
    // session key go to the server on its stdin instead (see sendSecretEnv), never into the create body.
    const env = {
      ...o.env,
      ...this.overrides.env,
      NO_CHANGE_TIMEOUT_SECONDS: String(o.noChangeTimeoutSeconds),
    };
    const secretEnv = { ...(request.secrets?.env ?? {}), SESSION_API_KEY: sessionApiKey };
    const labels: Record<string, string> = {
      ...o.labels,
      ...Object.fromEntries(
        Object.entries(this.labels).map(([k, v]) => [`${LABELS.userLabelPrefix}${k}`, v]),
      ),
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.session]: this.sessionId,
      ...(request.leaseId ? { [LEASE_TAG_KEY]: request.leaseId } : {}),
      ...(this.#poolId ? { [LABELS.pool]: this.#poolId } : {}),
    };
    const cpu = this.#cpuCores();
    const memory = this.#memoryMiB();
    const portKey = `${this.#image.port}/tcp`;
    const body: ContainerCreateBody = {
      Image: image,
      Entrypoint: [],
      Cmd: argv,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      Labels: labels,
      ...(socket ? {} : { ExposedPorts: { [portKey]: {} } }),
      HostConfig: {
        Init: true,
        NetworkMode: o.network === "none" ? "none" : "bridge",
        PidsLimit: o.maxProcesses,
        SecurityOpt: ["no-new-privileges"],
        ...(cpu !== undefined ? { NanoCpus: Math.round(cpu * 1e9) } : {}),
        ...(memory !== undefined ? { Memory: memory * 1024 * 1024, MemorySwap: memory * 1024 * 1024 } : {}),
        ...(socket ? { Binds: [`${stateDir}/run:${SOCKET_DIR_IN_CONTAINER}`] } : {}),
        ...(socket ? {} : { PortBindings: { [portKey]: [{ HostIp: "127.0.0.1", HostPort: "" }] } }),
      },
    };
    this.#container = {
      containerId: "",
      containerName: name,
      connect: svc.connect,
      ...(stateDir ? { stateDir } : {}),
      image,
    };
    try {
      if (stateDir) mkdirSync(join(stateDir, "run"), { recursive: true, mode: 0o700 });
      this.#container.containerId = await svc.engine.createContainer(body, { name });
      if (request.signal?.aborted) throw new RuntimeError("CANCELLED", "connect() was aborted");
      const stdin = await svc.engine.attachContainer(this.#container.containerId, {
        stdout: false,
        stderr: false,
      });
      try {
        await svc.engine.startContainer(this.#container.containerId);
      } catch (err) {
        stdin.close();
        throw err;
      }
      await sendSecretEnv(stdin, secretEnv);
      let url = "http://sandbox.local";
      if (!socket) {
        const info = await svc.engine.inspectContainer(this.#container.containerId);
        const hostPort = info?.NetworkSettings?.Ports?.[portKey]?.[0]?.HostPort;
        if (!hostPort) {
          throw new RuntimeError(
            "INTERNAL",
            `The engine published no host port for ${portKey} of container ${name}; use connect "socket" if this engine cannot publish ports.`,
          );
        }
        url = `http://127.0.0.1:${hostPort}`;
      }
      this.#startWatching(this.#container.containerId);
      if (stateDir) await this.#linkSocket(stateDir, request.signal);
      return {
        sandboxId: this.#container.containerId,
        url,
        sessionApiKey,
        workspaceDir: this.#image.workspaceDir,
        ...(stateDir ? { socketPath: join(stateDir, "server.sock") } : {}),
        data: { ...this.#container },
      };
    } catch (err) {
      // The base class only destroys sandboxes that provision() returned: leave nothing behind here.
      const error = await this.explainStartFailure(
        toDockerRuntimeError(err, `Starting the container for session ${this.sessionId}`),
      );
      await this.destroy(undefined, "start failed");
      throw error;
    }
  }

  /**
   * Waits for the server's socket in the bound directory, then hard-links it into the state directory, which
   * only the host sees. The host always connects through that link: whatever the sandbox later puts at
   * /run/agent-runtime/server.sock (a symlink to a host socket, another server) is never followed. `link()` does
   * not follow symlinks, and the link must be a socket, so a symlink planted before the link fails the start.
   */
  async #linkSocket(stateDir: string, signal: AbortSignal | undefined): Promise<void> {
    const inner = join(stateDir, "run", "server.sock");
    const deadline = Date.now() + this.#svc.options.startupTimeoutMs;
    for (;;) {
      const stat = lstatSync(inner, { throwIfNoEntry: false });
      if (stat) {
        if (!stat.isSocket()) {
          throw new RuntimeError(
            "FAILED_PRECONDITION",
            `The container's /run/agent-runtime/server.sock is not a socket (the image or its server put something else there); the sandbox was removed.`,
          );
        }
        break;
      }
      if (this.#exit)
        throw new RuntimeError("UNAVAILABLE", `The docker sandbox failed to start: ${this.#exit}`);
      if (signal?.aborted) throw new RuntimeError("CANCELLED", "connect() was aborted");
      if (Date.now() > deadline) {
        throw new RuntimeError(
          "TIMEOUT",
          `The action server in container ${this.#container?.containerName} made no socket within ${this.#svc.options.startupTimeoutMs} ms (startupTimeoutMs)`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    // A root engine makes the socket as root with the server's umask: a host that is not root could not connect.
    // The directory around it is the host user's, mode 0700, so opening the socket itself to everyone is safe.
    if (process.getuid?.() !== 0) await this.#openSocketToHost();
    const outer = join(stateDir, "server.sock");
    linkSync(inner, outer);
    if (!lstatSync(outer).isSocket()) {
      rmSync(outer, { force: true });
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "The container's server socket was replaced while starting; the sandbox was removed.",
      );
    }
  }

  /** Runs `chmod 0666` on the server's socket inside the container (for a host user that is not root). */
  async #openSocketToHost(): Promise<void> {
    const engine = this.#svc.engine;
    const id = this.#container?.containerId as string;
    const execId = await engine.createExec(id, {
      Cmd: ["chmod", "0666", `${SOCKET_DIR_IN_CONTAINER}/server.sock`],
      User: "0",
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await engine.startExec(execId);
    await new Promise<void>((resolve) => {
      stream.output.resume();
      stream.output.once("end", resolve);
      stream.output.once("close", resolve);
    });
    const result = await engine.inspectExec(execId);
    if (result.ExitCode !== 0) {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `Opening the server's socket to this host user failed (chmod exited ${result.ExitCode}); run the host as root, use a rootless engine, or set connect: "port".`,
      );
    }
  }

  /** Adds the container's last output lines (redacted) to a failed start's error. */
  protected override async explainStartFailure(error: RuntimeError): Promise<RuntimeError> {
    const id = this.#container?.containerId;
    if (!id || error.details?.output !== undefined) return error;
    const logs = await this.#svc.engine.containerLogs(id, { tail: START_LOG_LINES }).catch(() => "");
    const output = this.redactor.redact(logs.trimEnd());
    if (!output) return error;
    return new RuntimeError(
      error.code,
      `${error.message}\nLast lines of the container's output:\n${output}`,
      { cause: error, details: { ...error.details, output } },
    );
  }

  #startWatching(containerId: string): void {
    this.#stopWatching();
    let busy = false;
    this.#watch = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const info = await this.#svc.engine.inspectContainer(containerId);
        if (!info?.State.Running) {
          this.#exit = info
            ? `the container exited (code ${info.State.ExitCode}${info.State.OOMKilled ? ", killed for using more than its memory limit" : ""})${this.#command ? ` running \`${this.#command}\`` : ""}`
            : "the container was removed";
          this.#stopWatching();
          this.markDisconnected(this.#exit);
        }
      } catch {
        // The engine is briefly unreachable: the next tick tries again.
      } finally {
        busy = false;
      }
    }, WATCH_INTERVAL_MS);
    this.#watch.unref();
  }

  #stopWatching(): void {
    if (this.#watch) clearInterval(this.#watch);
    this.#watch = undefined;
  }

  protected override async reattach(handle: RuntimeHandle): Promise<ProvisionedSandbox> {
    const data = handle.data as Partial<DockerHandleData>;
    if (typeof data.containerId !== "string" || typeof data.containerName !== "string") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        "handle.data: not a runtime-docker handle (containerId and containerName are missing)",
      );
    }
    const info = await this.#svc.engine.inspectContainer(data.containerId).catch((err: unknown) => {
      throw toDockerRuntimeError(err, `Inspecting container ${data.containerName}`);
    });
    if (info?.Config.Labels?.[LABELS.managedBy] !== MANAGED_BY) {
      throw new RuntimeError(
        "NOT_FOUND",
        `The docker sandbox of session ${handle.sessionId} (container ${data.containerName}) does not exist any more; create a new runtime.`,
      );
    }
    this.#container = {
      containerId: data.containerId,
      containerName: data.containerName,
      connect: data.connect === "port" ? "port" : "socket",
      ...(typeof data.stateDir === "string" ? { stateDir: data.stateDir } : {}),
      image: String(data.image ?? info.Config.Image),
    };
    if (!info.State.Running) {
      // Gone for good: free the container and its state as close() would have.
      await this.destroy(undefined, "found stopped on attach");
      throw new RuntimeError(
        "NOT_FOUND",
        `The docker sandbox of session ${handle.sessionId} (container ${data.containerName}) is not running any more (exit code ${info.State.ExitCode}); create a new runtime.`,
      );
    }
    const sandbox = await super.reattach(handle);
    this.#startWatching(data.containerId);
    return sandbox;
  }

  /** Closed with keepAlive: the container runs on; this object stops watching it. */
  protected override release(): void {
    this.#stopWatching();
  }

  protected async destroy(_sandbox: ProvisionedSandbox | undefined, _reason: string): Promise<void> {
    this.#stopWatching();
    const c = this.#container;
    if (!c) return;
    if (c.containerId) {
      await this.#svc.engine.removeContainer(c.containerId).catch((err: unknown) => {
        this.logger.warn("removing the container failed", {
          container: c.containerName,
          error: String(err),
        });
      });
    }
    // Handles are input: only directories this package creates (by place and name) are removed.
    if (
      c.stateDir &&
      dirname(c.stateDir) === this.#svc.stateBase &&
      basename(c.stateDir).startsWith(CONTAINER_NAME_PREFIX)
    ) {
      rmSync(c.stateDir, { recursive: true, force: true });
    }
  }
}
