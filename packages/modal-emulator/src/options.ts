import { InvalidArgumentError, type Logger } from "@agent-runtime/runtime-core";
import { z } from "zod";

const secretValues = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "secret keys must be environment variable names"),
  z.string(),
);

const topLevelDir = z
  .string()
  .regex(/^\/[^/]+$/, "must be a top-level absolute directory such as /workspace (no nested paths)");

/** The `sandboxEngine` option: where sandboxes run and images are built when not as local processes. */
export const SandboxEngineOptionsSchema = z
  .object({
    /** The engine kind; only `"docker"` (the Docker Engine API, which Podman's service speaks too). */
    kind: z.literal("docker"),
    /**
     * The engine's address: `unix:///path/to/docker.sock`, an absolute socket path or `tcp://host:port`.
     * @default `DOCKER_HOST`, else /var/run/docker.sock, else Podman's sockets
     */
    address: z.string().min(1).optional(),
    /**
     * Base images replaced before a build: `FROM <key>` becomes `FROM <value>` (exact match of the image
     * reference the SDK sent, e.g. `{ "node:24-bookworm-slim": "localhost/agent-runtime/debian-trixie-min" }`),
     * for registries the engine cannot reach. Unmapped bases are used as written (pulled by the engine).
     * @default {}
     */
    baseImageMap: z.record(z.string().min(1), z.string().min(1)).default({}),
    /**
     * Repository the built images are tagged in (`<repository>:<content hash>`); they stay in the engine after
     * `close()`, so a later run with the same Dockerfile reuses them.
     * @default "localhost/modal-emulator"
     */
    repository: z
      .string()
      .regex(
        /^[a-z0-9]+(?:[._:/-][a-z0-9]+)*$/,
        "must be a lower-case image repository such as localhost/modal-emulator",
      )
      .default("localhost/modal-emulator"),
    /**
     * Deadline of one image build, in ms: past it the build ends with `FAILURE` and the log's last lines.
     * @default 1_200_000
     */
    buildTimeoutMs: z.number().int().min(1000).default(1_200_000),
  })
  .strict();

/** The options schema of {@link startModalEmulator}; every field is optional. */
export const ModalEmulatorOptionsSchema = z
  .object({
    /**
     * Address the two gRPC servers and the tunnel proxies bind to. Only loopback is sensible: the emulator has
     * no real security boundary.
     * @default "127.0.0.1"
     */
    host: z.string().min(1).default("127.0.0.1"),
    /**
     * Port of the control plane (`MODAL_SERVER_URL`); 0 picks a free port.
     * @default 0
     */
    port: z.number().int().min(0).max(65535).default(0),
    /**
     * Port of the command router (advertised as `https://<host>:<port>`; the SDK speaks plaintext to it
     * because the control plane is on localhost); 0 picks a free port.
     * @default 0
     */
    routerPort: z.number().int().min(0).max(65535).default(0),
    /**
     * Token id clients must send (`MODAL_TOKEN_ID`).
     * @default a random `ak-...` id
     */
    tokenId: z.string().min(1).optional(),
    /**
     * Token secret clients must send (`MODAL_TOKEN_SECRET`).
     * @default a random `as-...` secret
     */
    tokenSecret: z.string().min(1).optional(),
    /**
     * Named secrets served to `client.secrets.fromName(name)`: name -> { KEY: value }. More can be set at
     * run time through `emulator.namedSecrets`.
     * @default {}
     */
    secrets: z.record(z.string().min(1), secretValues).default({}),
    /**
     * Environment names that exist (`""` always means the first one).
     * @default ["main"]
     */
    environments: z.array(z.string().min(1)).min(1).default(["main"]),
    /**
     * How sandboxes are isolated. `"bwrap"`: bubblewrap with a private root, network, PID and IPC namespace per
     * sandbox (needs `bwrap` and `nsenter`, and permission to create namespaces). `"none"`: plain process
     * groups on the host, paths remapped where possible, container port = host port. `"auto"`: bwrap when a
     * probe succeeds, otherwise none (with a warning).
     * @default "auto"
     */
    isolation: z.enum(["auto", "bwrap", "none"]).default("auto"),
    /**
     * Directory holding per-sandbox roots, the CA and the proto files.
     * @default a fresh directory under the OS temp dir
     */
    stateDir: z.string().min(1).optional(),
    /**
     * Keep `stateDir` on `close()` (for post-mortems). A directory the emulator created is removed otherwise.
     * @default false
     */
    keepStateDir: z.boolean().default(false),
    /**
     * Host environment variables passed into every sandbox (everything else is dropped, so the emulator's own
     * credentials never leak in).
     * @default ["PATH", "LANG", "LC_ALL", "TZ"]
     */
    passEnv: z.array(z.string().min(1)).default(["PATH", "LANG", "LC_ALL", "TZ"]),
    /**
     * Top-level directories that are private to each sandbox (backed by its root) instead of the read-only host
     * view. `/tmp`, `/root` (HOME) and `/run` are always private.
     * @default ["/workspace"]
     */
    privateDirs: z.array(topLevelDir).default(["/workspace"]),
    /**
     * Sandboxes per `SandboxList` page (the SDK pages with `before_timestamp` until an empty page).
     * @default 100
     */
    listPageSize: z.number().int().min(1).max(10_000).default(100),
    /**
     * Lifetime of command-router JWTs. The SDK refreshes one only when it expires within 30 s.
     * @default 3_600_000
     */
    routerJwtTtlMs: z.number().int().min(1000).default(3_600_000),
    /**
     * Lifetime of the `AuthTokenGet` token (the SDK refreshes at about half of it).
     * @default 3_600_000
     */
    authTokenTtlMs: z.number().int().min(1000).default(3_600_000),
    /**
     * Maximum bytes kept per stream of a sandbox's main process (older output is dropped, as on Modal V2).
     * Exec output is always kept whole.
     * @default 16_777_216
     */
    maxSandboxOutputBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 1024 * 1024),
    /**
     * Finished sandboxes remembered for `wait`, `poll`, `fromName(includeTerminated)`; older ones are forgotten.
     * @default 1000
     */
    maxFinishedSandboxes: z.number().int().min(1).default(1000),
    /**
     * `image_builder_version` reported by `EnvironmentGetOrCreate`.
     * @default "2025.06"
     */
    imageBuilderVersion: z.string().min(1).default("2025.06"),
    /**
     * A CA to reuse (PEM certificate and private key) instead of generating one at start, e.g. one your
     * system already trusts.
     * @default generated at start
     */
    ca: z.object({ certPem: z.string().min(1), keyPem: z.string().min(1) }).optional(),
    /**
     * Behave as the real Modal service is documented to where the lenient emulator is kinder: V2 sandboxes
     * without idle timeout, names, tags or V1-list visibility; list results without tags; only Modal's GPU
     * types, counts and regions; Modal's name rules and tag caps; a tunnel whose server does not listen yet
     * resets the connection; finished builds' logs only on request. The README's "Strict mode" lists each rule
     * and its source. `false` keeps the lenient behaviour (every field implemented on both sandbox APIs).
     * @default true, or false when the environment variable `MODAL_EMULATOR_STRICT` is `0`/`false`
     */
    strict: z.boolean().optional(),
    /**
     * Region strings strict mode accepts in `regions` (scheduler placement). Replaces the built-in list, which
     * holds the broad regions and the region names Modal's docs and launch post show.
     * @default MODAL_REGIONS
     */
    regions: z.array(z.string().min(1)).min(1).optional(),
    /**
     * Run sandboxes as containers of a container engine (Docker, or Podman's Docker-compatible service) and
     * really build images there, instead of local processes and a replayed build log. See the README's
     * "Container engine" section.
     * @default undefined (local processes)
     */
    sandboxEngine: SandboxEngineOptionsSchema.optional(),
    /** Logger for emulator events (ids only, never secret values). @default quiet: warnings and errors only */
    logger: z
      .custom<Logger>((value) => isLogger(value), "must have debug, info, warn and error methods")
      .optional(),
  })
  .strict();

/**
 * The default of `strict`: on, as the real service behaves; `MODAL_EMULATOR_STRICT` = `0`/`false` turns it off
 * (`1`/`true` or unset leaves it on).
 * Anything else is an error (a typo should not silently test the lenient emulator).
 */
export function strictFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env["MODAL_EMULATOR_STRICT"];
  if (raw === undefined || raw === "") return true;
  const value = raw.trim().toLowerCase();
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  throw new InvalidArgumentError(
    `MODAL_EMULATOR_STRICT must be 1, true, 0 or false, got ${JSON.stringify(raw)}`,
    ["MODAL_EMULATOR_STRICT: invalid value"],
  );
}

function isLogger(value: unknown): value is Logger {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return ["debug", "info", "warn", "error"].every((k) => typeof v[k] === "function");
}

/** The `sandboxEngine` option as users write it. */
export type SandboxEngineOptions = z.input<typeof SandboxEngineOptionsSchema>;
/** The `sandboxEngine` option after defaults are applied. */
export type ResolvedSandboxEngineOptions = z.output<typeof SandboxEngineOptionsSchema>;
/** Options of {@link startModalEmulator} as users write them. */
export type ModalEmulatorOptions = z.input<typeof ModalEmulatorOptionsSchema>;
/** Options of {@link startModalEmulator} after defaults are applied. */
export type ResolvedModalEmulatorOptions = z.output<typeof ModalEmulatorOptionsSchema>;
