/**
 * @agent-runtime/runtime-modal: the Modal backend on the official `modal@0.11.1` SDK. A cost lease before
 * create (its id in the sandbox tags), the action server behind an encrypted tunnel with a fresh session key,
 * readiness by deadline, an idle timeout always set, durable handles, attach by session id and warm pools.
 * It imports runtime-core's contract only: secrets, cost and sweeping plug in through the context.
 */

// Credentials
export type {
  MissingModalCredentials,
  ModalCredentialProblem,
  ModalCredentialReport,
} from "./credentials.js";
export {
  assertModalCredentials,
  inspectModalCredentials,
  MODAL_CREDENTIALS_HELP,
  missingModalCredentialsError,
} from "./credentials.js";
// Deadlines
export {
  DEFAULT_GPU_STARTUP_TIMEOUT_MS,
  DEFAULT_IMAGE_BUILD_TIMEOUT_MS,
  DEFAULT_STARTUP_TIMEOUT_MS,
  TUNNEL_POLL_MS,
} from "./deadline.js";
export type { ModalStep } from "./errors.js";
// Errors
export { toModalRuntimeError } from "./errors.js";
// GPUs
export { MODAL_GPU_CATALOGUE, parseModalGpu } from "./gpus.js";
// Images
export { DEFAULT_BASE_IMAGE } from "./image.js";
export type { ImageBuildFailure } from "./image-build.js";
export { BUILD_LOG_TAIL_LINES, isModalImageBuildError } from "./image-build.js";
// Orphan sweeping, tags and names
export type { ListedSandbox } from "./inventory.js";
export { ModalSandboxInventory } from "./inventory.js";
export type { ModalHandleData } from "./modal-runtime.js";
export { ModalRuntime } from "./modal-runtime.js";
export { MANAGED_BY, MAX_TAG_KEY_LENGTH, MAX_TAG_VALUE_LENGTH, sandboxNameFor, TAGS } from "./naming.js";
export type { ModalRuntimeOptions, ResolvedModalRuntimeOptions, SandboxApi } from "./options.js";
// Options
export {
  DEFAULT_IDLE_TIMEOUT_MS,
  HiddenValue,
  ImageOptionSchema,
  MODAL_RENAMED_OPTIONS,
  ModalGpuSchema,
  ModalRuntimeOptionsSchema,
  OpenHandsImageSchema,
  RESERVED_TAG_PREFIX,
  SANDBOX_APIS,
  validateModalRuntimeOptions,
} from "./options.js";
// Provider and plugin
export {
  ModalRuntimeProvider,
  modalRuntime,
  modalRuntimePlugin,
  parseModalRuntimeOptions,
} from "./provider.js";
// Regions
export { MODAL_REGIONS } from "./regions.js";
// Secrets
export { modalSecretReferences } from "./secret-references.js";
export type { ModalSandboxShape } from "./shape.js";
// Per-session overrides
export {
  MODAL_SUPPORTED_OVERRIDES,
  MODAL_V2_OVERRIDE_HINTS,
  resolveSandboxShape,
  sandboxApiOf,
  supportedOverridesFor,
} from "./shape.js";
