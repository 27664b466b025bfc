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
export type { ModalStep } from "./errors.js";
// Errors
export { toModalRuntimeError } from "./errors.js";
// GPUs
export { MODAL_GPU_CATALOGUE, parseModalGpu } from "./gpus.js";
// Images
export { DEFAULT_BASE_IMAGE } from "./image.js";
// Orphan sweeping, tags and names
export { ModalSandboxInventory } from "./inventory.js";
export type { ModalHandleData } from "./modal-runtime.js";
export { ModalRuntime } from "./modal-runtime.js";
export { MANAGED_BY, sandboxNameFor, TAGS } from "./naming.js";
export type { ModalRuntimeOptions, ResolvedModalRuntimeOptions } from "./options.js";
// Options
export {
  HiddenValue,
  ImageOptionSchema,
  MODAL_RENAMED_OPTIONS,
  ModalGpuSchema,
  ModalRuntimeOptionsSchema,
  OpenHandsImageSchema,
  RESERVED_TAG_PREFIX,
  validateModalRuntimeOptions,
} from "./options.js";
// Provider and plugin
export {
  ModalRuntimeProvider,
  modalRuntime,
  modalRuntimePlugin,
  parseModalRuntimeOptions,
} from "./provider.js";
// Secrets
export { modalSecretReferences } from "./secret-references.js";
export type { ModalSandboxShape } from "./shape.js";
// Per-session overrides
export { MODAL_SUPPORTED_OVERRIDES, resolveSandboxShape } from "./shape.js";
