export {
  type BuildOptions,
  DockerEngine,
  type DockerEngineOptions,
  type EngineRequest,
  type EngineResponse,
  type ExecStream,
} from "./client.js";
export {
  defaultSocketCandidates,
  type EngineEndpoint,
  endpointText,
  parseEngineAddress,
  resolveEngineEndpoint,
} from "./endpoint.js";
export {
  codeOfStatus,
  DockerEngineError,
  type DockerEngineErrorCode,
  isDockerEngineError,
} from "./errors.js";
export { Demuxer, demuxAll, JsonLines, type StreamKind, tailLines } from "./streams.js";
export { type TarEntry, tarArchive } from "./tar.js";
export type * from "./types.js";
