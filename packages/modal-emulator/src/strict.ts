import { invalidArgument } from "./grpc-errors.js";
import type { SandboxCreateMsg, SandboxTagMsg } from "./messages.js";

/**
 * Strict mode: the checks and omissions of the real Modal service that the lenient emulator skips. Each rule
 * names its source: the pinned SDK's code (`modal@0.11.1`, `node_modules/modal/dist/index.js`), a comment in
 * Modal's protos (as compiled into that SDK's `index.d.ts`), the Python client (modal-labs/modal-client) or
 * Modal's docs. Rules marked GUESS have no public source; they pick the conservative answer and say so.
 */

/**
 * GPU types Modal documents, with how many fit one container. Source: modal.com/docs/guide/gpu ("Modal supports
 * the following values: T4, L4, A10, L40S, A100, A100-40GB, A100-80GB, RTX-PRO-6000, H100/H100!, H200,
 * B200/B200+"; "B200, H200, H100, A100, L4, T4 and L40S instances support up to 8 GPUs, and A10 instances
 * support up to 4"). A10G is the Python docs' older name of the A10 (modal.gpu reference); B300 and the
 * RTX-PRO-6000 maximum of 8 come from Modal's pricing page (/work/shared/notes/modal-pricing.md).
 */
export const MODAL_GPU_TYPES: Readonly<Record<string, number>> = {
  T4: 8,
  L4: 8,
  A10: 4,
  A10G: 4,
  L40S: 8,
  A100: 8,
  "A100-40GB": 8,
  "A100-80GB": 8,
  "RTX-PRO-6000": 8,
  H100: 8,
  "H100!": 8,
  H200: 8,
  B200: 8,
  "B200+": 8,
  B300: 8,
};

/**
 * Region strings strict mode accepts by default. Sources: the pricing table of modal.com/docs/guide/region-selection
 * names the broad regions ("Any region in US/EU/UK/AP", "CA/SA/ME/MX/AF"); the same page and Modal's
 * region-selection launch post (modal.com/blog/region-selection-launch) name `us-east`, `us-central`, `us-west`,
 * `eu-west` and, as specific regions, `us-east-1`, `us-east-2`, `us-central1`, `us-chicago-1`, `us-west-1`,
 * `us-ashburn-1`, `eu-west-1`, `eu-paris-1`. The docs' full table could not be read here: extend the list with
 * the emulator's `regions` option.
 */
export const MODAL_REGIONS: readonly string[] = [
  "us",
  "eu",
  "uk",
  "ap",
  "ca",
  "sa",
  "me",
  "mx",
  "af",
  "us-east",
  "us-central",
  "us-west",
  "eu-west",
  "us-east-1",
  "us-east-2",
  "us-central1",
  "us-chicago-1",
  "us-west-1",
  "us-ashburn-1",
  "eu-west-1",
  "eu-paris-1",
];

/**
 * Object names (apps, sandboxes). Source: the SDK's `isValidObjectName` (index.js: `name.length <= 64 &&
 * /^[a-zA-Z0-9\-_.]+$/ && !/^ap-[a-zA-Z0-9]{22}$/`), the same rule as the Python client's
 * `modal/_utils/name_utils.py` (`len(name) <= 64`), whose comment says the server uses it too.
 */
export const MAX_OBJECT_NAME_LENGTH = 64;
const OBJECT_NAME_CHARSET = /^[a-zA-Z0-9\-_.]+$/;
const APP_ID_PATTERN = /^ap-[a-zA-Z0-9]{22}$/;

/**
 * Tag limits. GUESS: neither the protos, the docs nor either SDK state a limit (the SDKs send tags unchecked).
 * These caps are a conservative stand-in so clients cap their tags somewhere; runtime-modal's own user-tag
 * schema (63 / 255) fits inside them.
 */
export const MAX_TAG_NAME_LENGTH = 64;
/** See {@link MAX_TAG_NAME_LENGTH}. */
export const MAX_TAG_VALUE_LENGTH = 256;

/** Throws INVALID_ARGUMENT unless `name` is a valid Modal object name. */
export function checkObjectName(name: string, kind: "App" | "Sandbox"): void {
  if (name.length <= MAX_OBJECT_NAME_LENGTH && OBJECT_NAME_CHARSET.test(name) && !APP_ID_PATTERN.test(name))
    return;
  throw invalidArgument(
    `Invalid ${kind} name: '${name}'. Names may contain only alphanumeric characters, dashes, periods and ` +
      `underscores, must be at most ${MAX_OBJECT_NAME_LENGTH} characters, and cannot look like an App ID.`,
  );
}

/** Throws INVALID_ARGUMENT for a tag whose name or value breaks the strict caps. */
export function checkTags(tags: readonly SandboxTagMsg[] | undefined, where: string): void {
  for (const tag of tags ?? []) {
    const name = tag.tag_name ?? "";
    const value = tag.tag_value ?? "";
    if (name.length > MAX_TAG_NAME_LENGTH) {
      throw invalidArgument(
        `${where}: tag name '${name.slice(0, 20)}...' is ${name.length} characters; at most ${MAX_TAG_NAME_LENGTH} are allowed`,
      );
    }
    if (value.length > MAX_TAG_VALUE_LENGTH) {
      throw invalidArgument(
        `${where}: the value of tag '${name}' is ${value.length} characters; at most ${MAX_TAG_VALUE_LENGTH} are allowed`,
      );
    }
  }
}

/**
 * Throws INVALID_ARGUMENT for a GPU type Modal does not document (exact match, so `"A100 "` with a trailing
 * space is refused: the SDK upper-cases the type and sends it otherwise untouched, `parseGpuConfig`) or a count
 * above the type's per-container maximum. Source: {@link MODAL_GPU_TYPES}.
 */
export function checkGpu(gpu: { gpu_type?: string; count?: number } | undefined, where: string): void {
  const type = gpu?.gpu_type;
  if (!type) return;
  const max = MODAL_GPU_TYPES[type];
  if (max === undefined) {
    throw invalidArgument(
      `${where}: unknown GPU type ${JSON.stringify(type)}. Modal offers: ${Object.keys(MODAL_GPU_TYPES).join(", ")} ` +
        `(send the type alone, without spaces, e.g. "A100-80GB" with count 2)`,
    );
  }
  const count = gpu?.count || 1;
  if (count > max) {
    throw invalidArgument(`${where}: ${count} x ${type} requested; at most ${max} fit one container`);
  }
}

/** Throws INVALID_ARGUMENT for a region not in `known`. Source: {@link MODAL_REGIONS}. */
export function checkRegions(
  regions: readonly string[] | undefined,
  known: readonly string[],
  where: string,
) {
  for (const region of regions ?? []) {
    if (!known.includes(region)) {
      throw invalidArgument(
        `${where}: unknown region ${JSON.stringify(region)}. Known regions: ${known.join(", ")} ` +
          "(the emulator's `regions` option adds more)",
      );
    }
  }
}

/**
 * What a strict `SandboxCreate` / `SandboxCreateV2` refuses. Both check names, tags, GPUs and regions; V2 also
 * refuses what the V2 backend lacks:
 * - GPUs. Source: the SDK throws "GPUs are not supported by experimentalCreate" before sending
 *   (`buildSandboxCreateV2RequestProto`); a raw call gets INVALID_ARGUMENT here.
 * - `idle_timeout_secs` and `name`. Source: the SDK's `experimentalCreate` doc lists what V2 supports ("exec,
 *   encrypted tunnels, wait/poll/terminate, CPU and memory configuration, region placement, volumes, ...") and
 *   neither is on it. GUESS for the answer: what the real service replies is not documented, so strict mode
 *   picks INVALID_ARGUMENT naming the field. Counter-evidence, so treat this as the conservative reading: the
 *   same SDK can look V2 sandboxes up by name (`experimentalFromName`, `SandboxGetFromNameV2`) and name one
 *   later (`experimentalSetName`), and the Python client's `_experimental_create` sends both fields.
 * - `ephemeral_secrets` together with `secret_sources`. Source: proto comment on
 *   `SandboxCreateV2Request.secret_sources`: "Cannot be combined with ephemeral_secrets".
 * Tags on V2 are not refused but dropped (see `ControlPlane`).
 */
export function checkStrictCreate(req: SandboxCreateMsg, v2: boolean, regions: readonly string[]): void {
  const rpc = v2 ? "SandboxCreateV2" : "SandboxCreate";
  const def = req.definition ?? {};
  if (def.name) checkObjectName(def.name, "Sandbox");
  checkTags(req.tags, rpc);
  checkRegions(def.scheduler_placement?.regions, regions, rpc);
  if (v2) {
    if (def.resources?.gpu_config?.gpu_type) {
      throw invalidArgument(
        `${rpc}: GPUs are not supported by V2 sandboxes; GPU sandboxes are created through SandboxCreate (V1)`,
      );
    }
    if (def.idle_timeout_secs) {
      throw invalidArgument(
        `${rpc}: idle_timeout_secs is not supported by V2 sandboxes; use the V1 API (SandboxCreate, e.g. ` +
          "MODAL_SANDBOX_V2=0) for an idle timeout",
      );
    }
    if (def.name) {
      throw invalidArgument(
        `${rpc}: name is not supported by V2 sandboxes; use the V1 API (SandboxCreate, e.g. MODAL_SANDBOX_V2=0) ` +
          "for a named sandbox",
      );
    }
    if (
      Object.keys(req.ephemeral_secrets?.contents ?? {}).length > 0 &&
      (req.secret_sources?.length ?? 0) > 0
    ) {
      throw invalidArgument(`${rpc}: secret_sources cannot be combined with ephemeral_secrets`);
    }
  } else {
    checkGpu(def.resources?.gpu_config, rpc);
  }
}
