/**
 * @agent-runtime/agent-host: the reference host. Composes the packages through the plugin registry from a
 * config file; serves an HTTP API with asynchronous tasks, long-polling and event streams, durable in SQLite;
 * and a CLI (`agent-host demo | run | serve`).
 */

/** This package's name. */
export const PACKAGE_NAME = "@agent-runtime/agent-host";
export type { AppOptions } from "./api/app.js";
export { bearerMatches, createApp } from "./api/app.js";
export type { BodySpec } from "./api/bodies.js";
export { actionBody, createSessionBody } from "./api/bodies.js";
export { httpStatusOf, toErrorResponse } from "./api/errors.js";
export { buildOpenApiDocument, openApiPath } from "./api/openapi.js";
export type { ResponseSpec, RouteSpec } from "./api/routes.js";
export { apiRoutes } from "./api/routes.js";
export type {
  CostGroup,
  CostsView,
  CreateSessionBody,
  CreateSessionInput,
  SessionView,
  TaskView,
} from "./api/schemas.js";
export {
  COST_GROUPS,
  CostsSchema,
  CreateSessionBodySchema,
  ErrorBodySchema,
  SESSION_STATUSES,
  SessionSchema,
  TASK_STATUSES,
  TaskSchema,
} from "./api/schemas.js";
export { sseFrame } from "./api/sse.js";
export { costsView, sessionView, taskView } from "./api/views.js";
export type { DemoOptions, DemoReport, DemoStep, TestSummary } from "./cli/demo.js";
// CLI building blocks: the demo, scripted agents, progress output
export { DEMO_FIX, DEMO_PROJECT, DEMO_TEST_COMMAND, parseTestOutput, runDemo } from "./cli/demo.js";
export type { EmulatedModal } from "./cli/emulator.js";
export { startEmulatedModal } from "./cli/emulator.js";
export type { ProgressStream, StepHandle } from "./cli/progress.js";
export { formatDuration, Progress } from "./cli/progress.js";
export type {
  RunScriptOptions,
  Script,
  ScriptInput,
  ScriptReport,
  ScriptStep,
  StepResult,
} from "./cli/script.js";
export {
  checkExpectations,
  ExpectSchema,
  loadScript,
  parseScript,
  runScript,
  ScriptSchema,
  StepSchema,
  stepAction,
} from "./cli/script.js";
export type { ComposedPlugins, ComposeOptions } from "./compose.js";
export { composePlugins } from "./compose.js";
export type { ConfigOverrides } from "./config.js";
export {
  loadHostConfig,
  parseHostConfig,
  parseStructuredText,
  readConfigFile,
  withOverrides,
} from "./config.js";
export type { AgentHostOptions, HostEvent } from "./host.js";
// Host, store and API
export {
  AgentHost,
  DATABASE_FILE_NAME,
  errorInfo,
  INTERRUPTED_QUEUED,
  INTERRUPTED_RUNNING,
} from "./host.js";
export type { HostConfig, ResolvedHostConfig } from "./options.js";
// Configuration
export {
  CostConfigSchema,
  HostConfigSchema,
  RENAMED_CONFIG_KEYS,
  RuntimeConfigSchema,
  SecretsConfigSchema,
  ServerConfigSchema,
  SessionsConfigSchema,
  StorageConfigSchema,
} from "./options.js";
// Plugins
export { builtinRegistry, ensurePlugin, LAZY_PLUGIN_MODULES } from "./plugins.js";
export type { RunningServer, StartServerOptions } from "./server.js";
export { isLoopback, startServer } from "./server.js";
// State directory and API token
export { defaultStateDir, ensureStateDir } from "./state-dir.js";
export type { ErrorInfo, EventRecord, SessionRecord, SessionState, TaskRecord, TaskState } from "./store.js";
export { HostStore } from "./store.js";
export type { TokenFile } from "./token.js";
export { generateToken, loadOrCreateToken, TOKEN_FILE_NAME } from "./token.js";
export { VERSION } from "./version.js";
