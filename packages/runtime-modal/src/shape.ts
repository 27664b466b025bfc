import {
  InvalidArgumentError,
  invalidOverrides,
  type ResolvedSessionOverrides,
  RuntimeError,
  SANDBOX_OVERRIDE_FIELDS,
  type SessionOverrideField,
} from "@agent-runtime/runtime-core";
import { parseModalGpu } from "./gpus.js";
import { type ResolvedImage, resolveImage } from "./image.js";
import { tagIssues } from "./naming.js";
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  ImageOptionSchema,
  RESERVED_TAG_PREFIX,
  type ResolvedModalRuntimeOptions,
  type SandboxApi,
} from "./options.js";

/** Every override field runtime-modal honours per sandbox (all of them). */
export const MODAL_SUPPORTED_OVERRIDES = SANDBOX_OVERRIDE_FIELDS;

/** Why a `sandboxApi: "v2"` provider refuses an override field, and the fix (core's UNSUPPORTED names the field). */
export const MODAL_V2_OVERRIDE_HINTS: Readonly<Partial<Record<SessionOverrideField, string>>> = {
  idleTimeoutMs:
    'Modal\'s V2 sandbox API (the modal runtime option sandboxApi is "v2") has no idle timeout; use sandboxApi "v1" (the default)',
  labels:
    'labels become the sandbox\'s tags, which Modal\'s V2 sandbox API (the modal runtime option sandboxApi is "v2") does not keep; use sandboxApi "v1" (the default), or a gpu (GPU sandboxes use V1)',
};

/** The override fields a provider with `options` honours: all of them on V1; on V2 not `idleTimeoutMs`. */
export function supportedOverridesFor(
  options: Pick<ResolvedModalRuntimeOptions, "sandboxApi">,
): readonly SessionOverrideField[] {
  return options.sandboxApi === "v2"
    ? MODAL_SUPPORTED_OVERRIDES.filter((f) => f !== "idleTimeoutMs")
    : MODAL_SUPPORTED_OVERRIDES;
}

/**
 * The sandbox API a sandbox with `options` is created through: a GPU always goes to V1 (modal@0.11.1's
 * `sandboxes.create` sends GPU creates to `SandboxCreate`), anything else to the provider's `sandboxApi`.
 */
export function sandboxApiOf(options: Pick<ResolvedModalRuntimeOptions, "sandboxApi" | "gpu">): SandboxApi {
  return options.gpu !== undefined ? "v1" : options.sandboxApi;
}

/** What one sandbox is made of: the provider's options with a session's overrides applied, and its image. */
export interface ModalSandboxShape {
  /** The provider's options with the overrides applied (`image`, `gpu`, `cpuCores`... `env`, `tags`). */
  options: ResolvedModalRuntimeOptions;
  /** The resolved image: the provider's, or the override's. */
  image: ResolvedImage;
  /** True when a warm-pool sandbox (the provider's shape, no cost scope) can serve these overrides. */
  poolCompatible: boolean;
}

/**
 * Applies a session's overrides to the provider's options, validated as the provider's options are: the GPU
 * against Modal's GPU catalogue (and normalised, as Modal receives it), CPU and memory requests against the provider's ceilings
 * (`cpuLimitCores`, `memoryLimitMiB`), the idle timeout against the lifetime, the image with image-builder's
 * schema, labels as Modal tags. Every problem is reported at once (INVALID_ARGUMENT, `path: message`).
 *
 * An overridden `timeoutMs` below the provider's `idleTimeoutMs` (with no `idleTimeoutMs` override) lowers
 * the idle timeout to the lifetime.
 */
export function resolveSandboxShape(
  provider: { options: ResolvedModalRuntimeOptions; image: ResolvedImage },
  overrides: ResolvedSessionOverrides,
): ModalSandboxShape {
  const base = provider.options;
  const issues: string[] = [];
  if (overrides.image !== undefined) {
    const parsed = ImageOptionSchema.safeParse(overrides.image);
    if (!parsed.success) for (const issue of parsed.error.issues) issues.push(`image: ${issue.message}`);
  }
  let gpu: string | undefined;
  if (overrides.gpu !== undefined) {
    try {
      gpu = parseModalGpu(overrides.gpu).normalized;
    } catch (err) {
      issues.push(`gpu: ${(err as Error).message}`);
    }
  }
  const cpuCores = overrides.cpuCores ?? base.cpuCores;
  if (base.cpuLimitCores !== undefined && cpuCores > base.cpuLimitCores) {
    issues.push(
      `cpuCores: must not exceed the provider's cpuLimitCores (${base.cpuLimitCores}); ask for less or raise cpuLimitCores`,
    );
  }
  const memoryMiB = overrides.memoryMiB ?? base.memoryMiB;
  if (base.memoryLimitMiB !== undefined && memoryMiB > base.memoryLimitMiB) {
    issues.push(
      `memoryMiB: must not exceed the provider's memoryLimitMiB (${base.memoryLimitMiB}); ask for less or raise memoryLimitMiB`,
    );
  }
  const api = sandboxApiOf({ sandboxApi: base.sandboxApi, gpu: gpu ?? base.gpu });
  if (api === "v2" && overrides.labels !== undefined && Object.keys(overrides.labels).length > 0) {
    const issue = `labels: the modal backend cannot set this per session; ${MODAL_V2_OVERRIDE_HINTS.labels}`;
    throw new RuntimeError("UNSUPPORTED", `Unsupported create input for the modal runtime:\n  ${issue}`, {
      details: { fields: ["labels"], issues: [issue] },
    });
  }
  const timeoutMs = overrides.timeoutMs ?? base.timeoutMs;
  // A V1 sandbox always gets an idle timeout, also a GPU one on a V2 provider (which has none of its own).
  let idleTimeoutMs =
    overrides.idleTimeoutMs ?? base.idleTimeoutMs ?? (api === "v1" ? DEFAULT_IDLE_TIMEOUT_MS : undefined);
  if (idleTimeoutMs !== undefined && idleTimeoutMs > timeoutMs) {
    if (overrides.idleTimeoutMs === undefined) idleTimeoutMs = timeoutMs;
    else issues.push(`idleTimeoutMs: must not exceed timeoutMs (${timeoutMs})`);
  }
  for (const key of Object.keys(overrides.labels ?? {})) {
    if (key.startsWith(RESERVED_TAG_PREFIX))
      issues.push(
        `labels.${key}: the "${RESERVED_TAG_PREFIX}" prefix is reserved for runtime-modal's own tags`,
      );
  }
  for (const { key, message } of tagIssues(overrides.labels ?? {})) issues.push(`labels.${key}: ${message}`);
  if (issues.length > 0) throw invalidOverrides("modal", issues);

  const options: ResolvedModalRuntimeOptions = {
    ...base,
    cpuCores,
    memoryMiB,
    timeoutMs,
    idleTimeoutMs,
    ...(gpu !== undefined ? { gpu } : {}),
    ...(overrides.image !== undefined
      ? { image: overrides.image as ResolvedModalRuntimeOptions["image"] }
      : {}),
    env: { ...base.env, ...overrides.env },
    tags: { ...base.tags, ...overrides.labels },
  };
  let image = provider.image;
  if (overrides.image !== undefined) {
    try {
      image = resolveImage(options);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw invalidOverrides("modal", err.issues);
      throw err;
    }
  }
  const sameEnv = Object.entries(overrides.env ?? {}).every(([k, v]) => base.env[k] === v);
  const poolCompatible =
    overrides.userId === undefined &&
    overrides.image === undefined &&
    (gpu === undefined || gpu === base.gpu) &&
    cpuCores === base.cpuCores &&
    memoryMiB === base.memoryMiB &&
    timeoutMs === base.timeoutMs &&
    idleTimeoutMs === base.idleTimeoutMs &&
    sameEnv;
  return { options, image, poolCompatible };
}
