/**
 * @agent-runtime/runtime-docker: the container backend. One container per session from an image built through the
 * engine (Docker, or Podman's Docker-compatible service), running the action-server.
 */
export { type DockerHandleData, DockerRuntime } from "./docker-runtime.js";
export { toDockerRuntimeError } from "./errors.js";
export { defaultImageSpec } from "./image.js";
export { DockerSandboxInventory, type ListedContainer } from "./inventory.js";
export { CONTAINER_NAME_PREFIX, LABELS, MANAGED_BY } from "./naming.js";
export {
  DEFAULT_BASE_IMAGE,
  type DockerRuntimeOptions,
  DockerRuntimeOptionsSchema,
  type ResolvedDockerRuntimeOptions,
} from "./options.js";
export {
  DockerRuntimeProvider,
  dockerRuntime,
  dockerRuntimePlugin,
  parseDockerRuntimeOptions,
} from "./provider.js";
