import { inspect } from "node:util";
import type { ImageSpecInput } from "@agent-runtime/image-builder";
import { z } from "zod";
import { parseModalGpu } from "./gpus.js";
import { tagIssues } from "./naming.js";
import { regionIssue } from "./regions.js";

/** A secret option value: readable with `reveal()`, shown as `[redacted]` by `JSON.stringify` and `util.inspect`. */
export class HiddenValue<T> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  /** The value itself. */
  reveal(): T {
    return this.#value;
  }
  toJSON(): string {
    return "[redacted]";
  }
  [inspect.custom](): string {
    return "[redacted]";
  }
}

/** Tag keys runtime-modal owns; user `tags` may not use this prefix. */
export const RESERVED_TAG_PREFIX = "agent-runtime.";

const MAX_LIFETIME_MS = 24 * 3_600_000;

/** A stock OpenHands runtime image, run with OpenHands' own action server (see image-builder's `openHandsRuntimeSpec`). */
export const OpenHandsImageSchema = z
  .object({
    /** The stock image, e.g. `ghcr.io/openhands/runtime:0.62-nikolaik` (pin a tag). */
    openhands: z.string().min(1),
    /** Pass `--no-enable-browser` when false. @default true */
    enableBrowser: z.boolean().optional(),
    /** OpenHands plugins to load. @default ["agent_skills", "jupyter"] */
    plugins: z.array(z.string().min(1)).optional(),
    /** The port their server listens on. @default 60000 */
    port: z.number().int().min(1).max(65535).optional(),
  })
  .strict();

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * What runs in the sandbox: an image name that already has `agent-runtime-action-server` on its PATH, a stock
 * OpenHands runtime image (`{ openhands: "<image>" }`), or an image-builder `ImageSpec` (validated with
 * image-builder's own schema when the provider is created, errors as `image.<path>: message`).
 */
export const ImageOptionSchema = z.union([
  z.string().min(1, "must be an image name such as registry/name:tag"),
  OpenHandsImageSchema,
  z.custom<ImageSpecInput>(
    (value) => isPlainObject(value) && !("openhands" in value),
    'must be an image name, { openhands: "<image>" } or an ImageSpec from @agent-runtime/image-builder',
  ),
]);

const TagsSchema = z.record(z.string().min(1), z.string()).superRefine((tags, ctx) => {
  for (const key of Object.keys(tags)) {
    if (key.startsWith(RESERVED_TAG_PREFIX)) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `the "${RESERVED_TAG_PREFIX}" prefix is reserved for runtime-modal's own tags`,
      });
    }
  }
  for (const { key, message } of tagIssues(tags)) ctx.addIssue({ code: "custom", path: [key], message });
});

/** Modal's sandbox APIs (see the `sandboxApi` option). */
export const SANDBOX_APIS = ["v1", "v2"] as const;
/** One of Modal's sandbox APIs. */
export type SandboxApi = (typeof SANDBOX_APIS)[number];

/** The idle timeout a V1 sandbox gets when none is set, in ms (15 min). */
export const DEFAULT_IDLE_TIMEOUT_MS = 900_000;

/** A GPU request, parsed against Modal's GPU catalogue and normalised (see `parseModalGpu`). */
export const ModalGpuSchema = z
  .string()
  .min(1)
  .transform((gpu, ctx) => {
    try {
      return parseModalGpu(gpu).normalized;
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  });

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid variable name");

const ModalRuntimeOptionsObject = z
  .object({
    /**
     * A Modal token. Without it the SDK's own lookup applies: `MODAL_TOKEN_ID` / `MODAL_TOKEN_SECRET`, then the
     * `profile` (or the active profile) in `~/.modal.toml` (`MODAL_CONFIG_PATH`). Missing or malformed tokens
     * fail at creation with UNAUTHORIZED and troubleshooting steps. Never logged or serialized.
     * @default the environment, then the profile
     */
    credentials: z
      .object({ tokenId: z.string().min(1), tokenSecret: z.string().min(1) })
      .strict()
      .transform((c) => new HiddenValue(c))
      .optional(),
    /** Profile of `~/.modal.toml` to read credentials (and server URL, environment) from. @default `MODAL_PROFILE`, else the active profile */
    profile: z.string().min(1).optional(),
    /**
     * Modal API URL; set it to modal-emulator's `serverUrl` to run offline.
     * @default `MODAL_SERVER_URL`, else the profile's, else https://api.modal.com
     */
    serverUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** The Modal App sandboxes are created in (created if missing). @default "agent-runtime" */
    appName: z.string().min(1).max(64).default("agent-runtime"),
    /** Modal environment. @default `MODAL_ENVIRONMENT`, else the profile's, else the workspace default */
    environment: z.string().min(1).optional(),
    /**
     * The image. @default `node:24-bookworm-slim` with the bundled action server written into it
     * (image-builder's `inline` strategy)
     */
    image: ImageOptionSchema.optional(),
    /**
     * The command that starts our action server, replacing `agent-runtime-action-server` (the port and flags
     * follow). For modal-emulator, whose sandboxes see the host: `[process.execPath, actionServerBinPath()]`.
     * Ignored for OpenHands images.
     * @default the image's command
     */
    serverCommand: z.array(z.string().min(1)).min(1).optional(),
    /** CPU request in physical cores (fractional allowed). @default 1 */
    cpuCores: z.number().positive().max(64).default(1),
    /**
     * CPU ceiling in cores. Unset, Modal lets a sandbox burst to request + 16 cores, and the cost lease reserves
     * that worst case: set it to cap both.
     * @default unset (Modal's burst ceiling)
     */
    cpuLimitCores: z.number().positive().max(80).optional(),
    /** Memory request in MiB. @default 2048 */
    memoryMiB: z.number().int().min(128).max(344_064).default(2048),
    /** Memory ceiling in MiB (the sandbox is OOM-killed above it). @default unset */
    memoryLimitMiB: z.number().int().min(128).max(344_064).optional(),
    /**
     * GPU request `"TYPE"` or `"TYPE:N"`, e.g. `"A100-80GB:2"`, checked against Modal's GPU types and per-container
     * maximums (`MODAL_GPU_CATALOGUE`; unknown types list the known ones) and kept in its normalised form
     * (`" a100 : 2 "` becomes `"A100:2"`), which is what Modal receives. A GPU makes the SDK use Modal's V1
     * sandbox API.
     * @default none
     */
    gpu: ModalGpuSchema.optional(),
    /**
     * Region pin, one of Modal's documented regions (`MODAL_REGIONS`: broad such as `"us"`, `"eu"`, narrow such as
     * `"us-east"`, or specific such as `"us-east-1"`); an unknown name is refused with the known ones. It multiplies
     * the bill (Modal's region page: broad x1.5, narrow x1.75).
     * @default none
     */
    region: z
      .string()
      .min(1)
      .superRefine((region, ctx) => {
        const issue = regionIssue(region);
        if (issue) ctx.addIssue({ code: "custom", message: issue });
      })
      .optional(),
    /** Maximum lifetime of a sandbox in ms (rounded up to whole seconds; at most 24 h). @default 3600000 (1 h) */
    timeoutMs: z.number().int().min(1000).max(MAX_LIFETIME_MS).default(3_600_000),
    /**
     * Modal ends a sandbox idle this long (no exec, no stdin, no open tunnel connection), in ms, rounded up to
     * whole seconds. Always set on V1 sandboxes, so a sandbox orphaned by a crashed host stops billing. Modal's V2
     * sandbox API has no idle timeout: with `sandboxApi: "v2"` setting it is an error (a V2 sandbox runs until
     * `timeoutMs` or `close()`).
     * @default 900000 (15 min) with `sandboxApi: "v1"`; none with `"v2"`
     */
    idleTimeoutMs: z.number().int().min(1000).max(MAX_LIFETIME_MS).optional(),
    /**
     * Which of Modal's sandbox APIs creates CPU sandboxes, applied through the SDK's own switch (its
     * `MODAL_SANDBOX_V2` setting, set for this provider's client only). `"v1"` is the default because it supports
     * every feature runtime-modal relies on: the idle timeout, sandbox names (one sandbox per session, attach by
     * session id, safe create retries), tags (cost leases, warm pools, orphan sweeps) and listing. modal@0.11.1
     * itself defaults to V2, whose documented features include none of those four (its `experimentalCreate`
     * doc; V2 sandboxes "are not currently returned by list()"), as Modal's Python client keeps V2 opt-in.
     * With `"v2"`, options that need them are refused up front (`idleTimeoutMs`, `tags`, `pool`,
     * `sessionKeySecret`, a cost plugin; per session `idleTimeoutMs` and `labels`), sandboxes are created without
     * a name (a second sandbox for the same session is not refused, and a create is not retried after a transient
     * failure) and `inventory` refuses to list. A GPU sandbox always uses V1 (the SDK sends GPU creates to V1), so
     * a provider-level `gpu` with `"v2"` is refused as contradictory.
     * @default "v1"
     */
    sandboxApi: z.enum(SANDBOX_APIS).default("v1"),
    /**
     * Deadline of a sandbox's start, in ms, twice: for the App lookup, secrets, create and tunnels (image builds
     * excluded: see `imageBuildTimeoutMs`), then for the server's readiness. Modal's requests to slow down and
     * RESOURCE_EXHAUSTED (no capacity) are retried with backoff until it passes. Unset, it is 120 s, and with a GPU
     * 20 minutes for the create and tunnels (Modal may queue a GPU sandbox for capacity; the SDK itself waits up to
     * 21 minutes for one to be scheduled) and 120 s for readiness.
     * @default 120000, or 1200000 (create and tunnels) with a GPU
     */
    startupTimeoutMs: z.number().int().min(1000).optional(),
    /**
     * Deadline of an image build, in ms: past it `connect()` fails with TIMEOUT (`details.reason`
     * `IMAGE_BUILD_TIMEOUT`) and the build log's last lines. A build runs once per provider and image (Modal reuses
     * built layers), so a later start after a build that finished on Modal is quick.
     * @default 1200000 (20 min)
     */
    imageBuildTimeoutMs: z.number().int().min(1000).default(1_200_000),
    /** Keep the sandbox running after `close()`; re-attach with its handle or session id. @default false */
    keepAlive: z.boolean().default(false),
    /** Extra tags on every sandbox (keys may not start with `agent-runtime.`). @default {} */
    tags: TagsSchema.default({}),
    /** Non-secret environment variables for the sandbox (secrets come from the secrets plugin). @default {} */
    env: z.record(envName, z.string()).default({}),
    /** Warm pool: `size` sandboxes kept ready; `create()` hands one out at once. @default { size: 0 } */
    pool: z
      .object({ size: z.number().int().min(0).max(64).default(0) })
      .strict()
      .default({ size: 0 }),
    /**
     * A host secret (at least 32 characters) from which session API keys are derived, so `attachSession()` can
     * re-attach by session id after a host restart without a stored handle. Never logged or serialized.
     * @default unset (random keys; re-attach only with a handle)
     */
    sessionKeySecret: z
      .string()
      .min(32, "must be at least 32 characters")
      .transform((value) => new HiddenValue(value))
      .optional(),
    /** An extra CA (PEM) to trust for tunnel URLs, e.g. modal-emulator's `caCertPem`. @default none */
    caCertPem: z.string().includes("BEGIN CERTIFICATE", { message: "must be a PEM certificate" }).optional(),
    /** A port inside the sandbox where a VS Code server listens (tunnelled, `VSCODE_PORT` set). @default none */
    vscodePort: z.number().int().min(1).max(65535).optional(),
    /** Whether the image has Python for `run_ipython`. @default true for OpenHands images, else false */
    ipython: z.boolean().optional(),
    /** Hard timeout for actions without one, in ms. @default 120000 */
    defaultActionTimeoutMs: z.number().int().positive().default(120_000),
    /** The server's no-change timeout (`NO_CHANGE_TIMEOUT_SECONDS`). @default 10 */
    noChangeTimeoutSeconds: z.number().positive().default(10),
    /**
     * How often the provider asks Modal which of its connected sandboxes still run, in ms: one listing of the App
     * for all of them (not one call per sandbox), see `LivenessMonitor`.
     * @default 5000
     */
    livenessIntervalMs: z.number().int().min(100).default(5000),
    /**
     * Retries of transient Modal failures (UNAVAILABLE, RESOURCE_EXHAUSTED) on top of the SDK's own quick
     * retries, with exponential backoff. Only idempotent calls, and creates guarded by the sandbox's unique name.
     * @default { maxAttempts: 3, initialDelayMs: 500, maxDelayMs: 8000 }
     */
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(10).default(3),
        initialDelayMs: z.number().int().min(1).default(500),
        maxDelayMs: z.number().int().min(1).default(8000),
      })
      .strict()
      .default({ maxAttempts: 3, initialDelayMs: 500, maxDelayMs: 8000 }),
    /** Level of the SDK's own log lines passed to the host logger. @default "warn" */
    sdkLogLevel: z.enum(["debug", "info", "warn", "error"]).default("warn"),
  })
  .strict();

/**
 * Options of {@link modalRuntime}: what users write ({@link ModalRuntimeOptions}) and the parsed form. The idle
 * timeout's default depends on `sandboxApi`, so it is filled in after the fields are parsed.
 */
export const ModalRuntimeOptionsSchema = ModalRuntimeOptionsObject.transform(
  (o): z.output<typeof ModalRuntimeOptionsObject> =>
    o.idleTimeoutMs === undefined && o.sandboxApi === "v1"
      ? { ...o, idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS }
      : o,
);

/** What users write. */
export type ModalRuntimeOptions = z.input<typeof ModalRuntimeOptionsSchema>;
/** Options after parsing, defaults filled. */
export type ResolvedModalRuntimeOptions = z.output<typeof ModalRuntimeOptionsSchema>;

/**
 * Checks between options, run once every field is valid (the plugin's `validate`): each issue as `path: message`.
 */
export function validateModalRuntimeOptions(o: ResolvedModalRuntimeOptions): string[] {
  const issues: string[] = [];
  if (o.idleTimeoutMs !== undefined && o.idleTimeoutMs > o.timeoutMs)
    issues.push(`idleTimeoutMs: must not exceed timeoutMs (${o.timeoutMs})`);
  if (o.cpuLimitCores !== undefined && o.cpuLimitCores < o.cpuCores)
    issues.push(`cpuLimitCores: must be at least cpuCores (${o.cpuCores})`);
  if (o.memoryLimitMiB !== undefined && o.memoryLimitMiB < o.memoryMiB)
    issues.push(`memoryLimitMiB: must be at least memoryMiB (${o.memoryMiB})`);
  if (o.credentials !== undefined && o.profile !== undefined)
    issues.push("profile: give either credentials or a profile, not both");
  if (o.sandboxApi === "v2") issues.push(...sandboxApiV2Issues(o));
  return issues;
}

/** What a `sandboxApi: "v2"` provider cannot do, each as `path: message` naming the fix. */
function sandboxApiV2Issues(o: ResolvedModalRuntimeOptions): string[] {
  const issues: string[] = [];
  const v1 = 'or use sandboxApi "v1" (the default)';
  if (o.gpu !== undefined)
    issues.push(
      `sandboxApi: a GPU sandbox always uses Modal's V1 sandbox API (modal@0.11.1 sends GPU creates to V1), so "v2" has no effect with gpu "${o.gpu}"; remove sandboxApi or gpu`,
    );
  if (o.idleTimeoutMs !== undefined)
    issues.push(`idleTimeoutMs: Modal's V2 sandbox API has no idle timeout; remove idleTimeoutMs ${v1}`);
  if (Object.keys(o.tags).length > 0)
    issues.push(`tags: Modal's V2 sandbox API keeps no tags; remove tags ${v1}`);
  if (o.pool.size > 0)
    issues.push(
      `pool.size: a warm pool needs tags (to hand sandboxes out and sweep leftovers on close), which Modal's V2 sandbox API does not keep; set pool.size to 0 ${v1}`,
    );
  if (o.sessionKeySecret !== undefined)
    issues.push(
      `sessionKeySecret: attachSession finds a sandbox by its name or tags, which Modal's V2 sandbox API does not keep; re-attach with stored handles instead ${v1}`,
    );
  return issues;
}

/** Old or guessed option names and their replacements (the plugin's `renamedOptions`: an error names the new one). */
export const MODAL_RENAMED_OPTIONS: Readonly<Record<string, string>> = {
  cpu: "cpuCores",
  cpuLimit: "cpuLimitCores",
  memory: "memoryMiB",
  memoryMb: "memoryMiB",
  memoryLimit: "memoryLimitMiB",
  timeout: "timeoutMs",
  idleTimeout: "idleTimeoutMs",
  startupTimeout: "startupTimeoutMs",
  imageBuildTimeout: "imageBuildTimeoutMs",
  buildTimeoutMs: "imageBuildTimeoutMs",
  regions: "region",
  app: "appName",
  tokenId: "credentials.tokenId",
  tokenSecret: "credentials.tokenSecret",
  poolSize: "pool.size",
  endpoint: "serverUrl",
};
