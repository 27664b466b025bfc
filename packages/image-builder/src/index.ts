/**
 * @agent-runtime/image-builder: one declarative image spec, many targets: a Dockerfile, a Modal image (the
 * `./modal` entry) and content-hash tags with a build plan. Standalone: no runtime-core, no modal needed.
 */

export type { ServerLaunch, ServerLaunchOverrides } from "./action-server.js";
// Starting the action server
export {
  ACTION_SERVER_COMMAND,
  ensureRuntimeCommand,
  INLINE_BUNDLE_PATH,
  INLINE_LAUNCHER_PATH,
  ServerLaunchOverridesSchema,
  serverLaunch,
} from "./action-server.js";
export type {
  ActionServerOptions,
  AptInstallOptions,
  CopyInlineOptions,
  PipInstallOptions,
} from "./builder.js";
// The builder and the OpenHands preset
export { fromDockerfile, fromRegistry, ImageRecipe, ImageSpecBuilder, imageRecipe } from "./builder.js";
export type { ActionServerBundle } from "./bundle.js";
export { readActionServerBundle } from "./bundle.js";
export { stableStringify } from "./canonical-json.js";
export type { DockerfileInstruction, ModalDockerfileBase } from "./dockerfile-base.js";
export { dockerfileBaseForModal, scanDockerfile } from "./dockerfile-base.js";
export type { EngineBuildOptions, EngineBuildResult } from "./engine-build.js";
// Real builds through a container engine
export { buildWithEngine, IMAGE_SOURCE_TAG_LABEL } from "./engine-build.js";
export type { ImageBuilderErrorOptions } from "./errors.js";
// Errors
export { formatIssuePath, ImageBuilderError, ImageBuilderErrorCode, isImageBuilderError } from "./errors.js";
export { INLINE_CHUNK_BASE64_CHARS, INLINE_PARTS_ROOT, MAX_INLINE_RUN_BYTES } from "./inline.js";
export type { OpenHandsRuntimeOptions } from "./openhands.js";
export { openHandsRuntimeSpec } from "./openhands.js";
export type {
  BuildPlanOptions,
  RenderOptions,
  ResolvedBuildPlanOptions,
  ResolvedRenderOptions,
} from "./options.js";
export {
  BuildPlanOptionsSchema,
  DEFAULT_MAX_INLINE_BYTES,
  DEFAULT_REPOSITORY,
  RenderOptionsSchema,
} from "./options.js";
export type { RenderedBase, RenderedImage } from "./render.js";
// Rendering
export { MAX_LINE_BYTES, renderImage, toDockerfile } from "./render.js";
export { dockerEnvQuote, shellQuote } from "./shell.js";
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
// The spec
export {
  AgentRuntimeServerSchema,
  AptInstallStepSchema,
  BaseSchema,
  CopyInlineStepSchema,
  canonicalJson,
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
  parseImageSpec,
  RegistryBaseSchema,
  RunStepSchema,
  ServerInstallSchema,
  ServerSchema,
  SPEC_VERSION,
  StepSchema,
  UserStepSchema,
  WorkdirStepSchema,
} from "./spec.js";
export type { BuildPlan, BuildPlanKind, ImageTags } from "./tags.js";
// Tags and build plans
export { hash16, imageTags, RECIPE_VERSION, resolveBuildPlan } from "./tags.js";
