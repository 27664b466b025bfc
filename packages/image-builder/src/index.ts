/**
 * @agent-runtime/image-builder: one declarative image spec, many targets: a Dockerfile, a Modal image (the
 * `./modal` entry) and content-hash tags with a build plan. Standalone: no runtime-core, no modal needed.
 */

// Errors
export { ImageBuilderError, ImageBuilderErrorCode, formatIssuePath, isImageBuilderError } from "./errors.js";
export type { ImageBuilderErrorOptions } from "./errors.js";

// The spec
export {
  AgentRuntimeServerSchema,
  AptInstallStepSchema,
  BaseSchema,
  CopyInlineStepSchema,
  DEFAULT_SERVER_PORT,
  DockerfileBaseSchema,
  EnvStepSchema,
  ImageRefSchema,
  ImageSpecSchema,
  InlineServerInstallSchema,
  MAX_LINE_CHARS,
  NpmInstallStepSchema,
  NpmServerInstallSchema,
  OpenHandsServerSchema,
  PipInstallStepSchema,
  PreinstalledServerInstallSchema,
  RegistryBaseSchema,
  RunStepSchema,
  SPEC_VERSION,
  ServerInstallSchema,
  ServerSchema,
  StepSchema,
  UserStepSchema,
  WorkdirStepSchema,
  canonicalJson,
  parseImageSpec,
} from "./spec.js";
export type {
  AgentRuntimeServer,
  BaseInput,
  ImageSpec,
  ImageSpecInput,
  OpenHandsServer,
  Server,
  ServerInput,
  ServerInstallInput,
  Step,
  StepInput,
} from "./spec.js";
export { stableStringify } from "./canonical-json.js";

// The builder and the OpenHands preset
export { ImageRecipe, ImageSpecBuilder, fromDockerfile, fromRegistry, imageRecipe } from "./builder.js";
export type { ActionServerOptions, AptInstallOptions, CopyInlineOptions, PipInstallOptions } from "./builder.js";
export { openHandsRuntimeSpec } from "./openhands.js";
export type { OpenHandsRuntimeOptions } from "./openhands.js";

// Starting the action server
export {
  ACTION_SERVER_COMMAND,
  INLINE_BUNDLE_PATH,
  INLINE_LAUNCHER_PATH,
  ServerLaunchOverridesSchema,
  ensureRuntimeCommand,
  serverLaunch,
} from "./action-server.js";
export type { ServerLaunch, ServerLaunchOverrides } from "./action-server.js";
export { readActionServerBundle } from "./bundle.js";
export type { ActionServerBundle } from "./bundle.js";

// Rendering
export { MAX_LINE_BYTES, renderImage, toDockerfile } from "./render.js";
export type { RenderedBase, RenderedImage } from "./render.js";
export { INLINE_CHUNK_BASE64_CHARS } from "./inline.js";
export { dockerEnvQuote, shellQuote } from "./shell.js";
export { dockerfileBaseForModal, scanDockerfile } from "./dockerfile-base.js";
export type { DockerfileInstruction, ModalDockerfileBase } from "./dockerfile-base.js";
export {
  BuildPlanOptionsSchema,
  DEFAULT_MAX_INLINE_BYTES,
  DEFAULT_REPOSITORY,
  RenderOptionsSchema,
} from "./options.js";
export type { BuildPlanOptions, RenderOptions, ResolvedBuildPlanOptions, ResolvedRenderOptions } from "./options.js";

// Tags and build plans
export { RECIPE_VERSION, hash16, imageTags, resolveBuildPlan } from "./tags.js";
export type { BuildPlan, BuildPlanKind, ImageTags } from "./tags.js";
