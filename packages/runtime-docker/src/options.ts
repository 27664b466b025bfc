import { RuntimeError } from "@agent-runtime/runtime-core";
import { z } from "zod";

/** The default base of the default image: Debian with Node.js 24 and bash (as runtime-modal's). */
export const DEFAULT_BASE_IMAGE = "node:24-bookworm-slim";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Options of {@link dockerRuntime}: what users write (`DockerRuntimeOptions`) and the parsed form. */
export const DockerRuntimeOptionsSchema = z
  .object({
    /**
     * The engine's address: `unix:///var/run/docker.sock`, an absolute socket path, or `tcp://host:port`
     * (plain HTTP). Any engine that speaks the Docker Engine API: Docker, or Podman's compatible service
     * (`podman system service`).
     * @default `DOCKER_HOST`, else /var/run/docker.sock, else /run/podman/podman.sock, else the rootless Podman socket
     */
    engine: z.string().min(1).optional(),
    /**
     * What runs in the container:
     * - absent: the default recipe, built once through the engine and reused by its content-hash tag:
     *   `baseImage` plus the bundled action-server written in by `RUN` lines (image-builder's inline strategy).
     * - a string: an image that has the action-server preinstalled (`agent-runtime-action-server` on the PATH).
     * - an image-builder spec object (`fromRegistry(...).withActionServer(...).build()`): built through the
     *   engine once per content hash.
     * @default the default recipe on `baseImage`
     */
    image: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
    /**
     * The base of the default recipe: any Debian, Ubuntu or Alpine image; Node.js >= 20 and bash are installed
     * with apt-get or apk when missing.
     * @default "node:24-bookworm-slim"
     */
    baseImage: z.string().min(1).default(DEFAULT_BASE_IMAGE),
    /**
     * How the host reaches the container's action-server:
     * - `"socket"`: a unix socket in a host directory bound into the container: the server is on no network
     *   (other containers cannot reach it), and it works with `network: "none"`. Needs the engine on this
     *   machine's kernel (Linux with a local socket).
     * - `"port"`: TCP, published on the host's 127.0.0.1 on a port the engine picks (works with Docker
     *   Desktop and remote engines); the server also listens on the container's network.
     * @default "socket" when the engine is a unix socket on Linux, else "port"
     */
    connect: z.enum(["socket", "port"]).optional(),
    /**
     * The container's network: `"egress"` is the engine's default bridge (outbound access; the host's
     * loopback services are not reachable), `"none"` only its own loopback (needs `connect: "socket"`).
     * @default "egress"
     */
    network: z.enum(["egress", "none"]).default("egress"),
    /** CPU limit in cores (fractional allowed; HostConfig.NanoCpus). @default unlimited */
    cpuCores: z.number().positive().max(64).optional(),
    /** Memory limit in MiB for the whole container, the server included (no swap on top). @default unlimited */
    memoryMiB: z.number().int().min(128).max(344_064).optional(),
    /** Most processes and threads at once in the container (HostConfig.PidsLimit). @default 1024 */
    maxProcesses: z.number().int().min(16).max(1_000_000).default(1024),
    /**
     * Whether the image has python3, so `run_ipython` works (capability `ipython`). The default recipe has no
     * Python; add it with `aptInstall(["python3"])` in your spec and set this.
     * @default false
     */
    ipython: z.boolean().default(false),
    /** Environment variables for the container. @default {} */
    env: z.record(z.string().regex(ENV_NAME, "not a valid variable name"), z.string()).default({}),
    /** Labels put on every container, besides the runtime's own (`agent-runtime.*`). @default {} */
    labels: z.record(z.string().min(1), z.string()).default({}),
    /** Deadline for the server to answer once the container is started, in ms. @default 60000 */
    startupTimeoutMs: z.number().int().positive().default(60_000),
    /** Deadline of an image build (not counted in startupTimeoutMs), in ms. @default 1200000 (20 min) */
    imageBuildTimeoutMs: z.number().int().positive().default(1_200_000),
    /** Hard timeout for actions without one, in ms. @default 120000 */
    defaultActionTimeoutMs: z.number().int().positive().default(120_000),
    /** The server's no-change timeout (`NO_CHANGE_TIMEOUT_SECONDS`). @default 10 */
    noChangeTimeoutSeconds: z.number().positive().default(10),
    /** Warm pool: `size` containers kept ready; `create()` hands one out at once. @default { size: 0 } */
    pool: z
      .object({ size: z.number().int().min(0).max(64).default(0) })
      .strict()
      .default({ size: 0 }),
    /** Keep the container running after `close()` (re-attach with its handle). @default false */
    keepAlive: z.boolean().default(false),
    /**
     * Host directory for per-container state (the server's socket directory in socket mode).
     * @default `<os tmpdir>/agent-runtime-docker`
     */
    stateDir: z.string().startsWith("/", "must be an absolute path").optional(),
  })
  .strict();

/** What users write. */
export type DockerRuntimeOptions = z.input<typeof DockerRuntimeOptionsSchema>;
/** Options after parsing, defaults filled. */
export type ResolvedDockerRuntimeOptions = z.output<typeof DockerRuntimeOptionsSchema>;

/** Options written under another name elsewhere (runtime-local, runtime-modal), named with their replacement. */
export const DOCKER_RENAMED_OPTIONS: Record<string, string> = {
  timeoutMs: "startupTimeoutMs",
  poolSize: "pool.size",
  memory: "memoryMiB",
  cpu: "cpuCores",
  dockerHost: "engine",
  host: "engine",
  socket: "engine",
  limits: "memoryMiB, cpuCores and maxProcesses",
};

/** The checks between options (after the schema). */
export function validateDockerRuntimeOptions(o: ResolvedDockerRuntimeOptions): string[] {
  const issues: string[] = [];
  if (o.network === "none" && o.connect === "port") {
    issues.push(
      'connect: "port" needs a network to publish the port on; with network "none" use connect "socket" (the default on Linux)',
    );
  }
  if (o.image !== undefined && o.baseImage !== DEFAULT_BASE_IMAGE) {
    issues.push("baseImage: only applies to the default recipe; drop it, or drop image");
  }
  return issues;
}

/** @internal Throws INVALID_ARGUMENT for a problem found while resolving options. */
export function invalidOption(issue: string): RuntimeError {
  return new RuntimeError("INVALID_ARGUMENT", `Invalid docker runtime options:\n  ${issue}`, {
    details: { issues: [issue] },
  });
}
