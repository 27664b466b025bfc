/**
 * `@agent-runtime/modal-emulator`: Modal's gRPC API on 127.0.0.1 with sandboxes as local processes (or containers
 * of a container engine), for offline development and real tests of code that uses the `modal` SDK. Exports,
 * sorted by module: the labels of engine mode's containers and images, the emulator, its faults and named
 * secrets, its options, the served protos, wire constants (`GenericStatus`, the exec timeout exit code) and
 * strict mode's lists and limits.
 */

export { INSTANCE_LABEL, SANDBOX_LABEL } from "./container-sandbox.js";
export type { GenericStatusName, ModalEmulator, SandboxSummary } from "./emulator.js";
export { startModalEmulator } from "./emulator.js";
export { MANAGED_BY, MANAGED_BY_LABEL } from "./engine-images.js";
export type { EvictionStatus, ImageBuildFault } from "./faults.js";
export { Faults } from "./faults.js";
export { FS_TOOLS_PATH } from "./fs-tool.js";
export type { IsolationMode } from "./isolation.js";
export type {
  ModalEmulatorOptions,
  ResolvedModalEmulatorOptions,
  ResolvedSandboxEngineOptions,
  SandboxEngineOptions,
} from "./options.js";
export { ModalEmulatorOptionsSchema, SandboxEngineOptionsSchema } from "./options.js";
export { MODAL_API_PROTO, MODAL_ROUTER_PROTO } from "./proto/modal-proto.js";
export { EXEC_TIMEOUT_EXIT_CODE, GenericStatus } from "./sandbox.js";
export { NamedSecrets } from "./secrets.js";
export {
  MAX_OBJECT_NAME_LENGTH,
  MAX_TAG_NAME_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  MODAL_GPU_TYPES,
  MODAL_REGIONS,
} from "./strict.js";
