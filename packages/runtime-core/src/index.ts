/**
 * @agent-runtime/runtime-core: the protocol, the Runtime interface, the action-server client, plugins,
 * errors and logging that every agent-runtime package shares.
 */

// Errors
export { ErrorCode, RuntimeError, InvalidArgumentError, isRuntimeError, toRuntimeError } from "./errors.js";
export type { RuntimeErrorOptions } from "./errors.js";

// Logging
export { silentLogger, quietLogger, fromPino, redactingLogger } from "./logger.js";
export type { Logger, LogFields } from "./logger.js";

// Validation helpers
export { parseOrThrow, formatZodIssues, formatIssuePath, checkRenamedOptions } from "./validation.js";

// Protocol: actions
export {
  ActionSchema,
  ACTION_TYPES,
  CmdRunActionSchema,
  CmdRunArgsSchema,
  IPythonRunCellActionSchema,
  FileReadActionSchema,
  FileWriteActionSchema,
  FileEditActionSchema,
  EditCommandSchema,
  BrowseUrlActionSchema,
  BrowseInteractiveActionSchema,
  McpActionSchema,
  SecurityRiskSchema,
  ConfirmationStateSchema,
} from "./protocol/actions.js";
export type {
  Action,
  ActionInput,
  ActionType,
  ActionOf,
  CmdRunAction,
  IPythonRunCellAction,
  FileReadAction,
  FileWriteAction,
  FileEditAction,
  BrowseUrlAction,
  BrowseInteractiveAction,
  McpAction,
} from "./protocol/actions.js";

// Protocol: observations
export {
  ObservationSchema,
  CmdOutputObservationSchema,
  CmdOutputMetadataSchema,
  IPythonRunCellObservationSchema,
  FileReadObservationSchema,
  FileWriteObservationSchema,
  FileEditObservationSchema,
  ErrorObservationSchema,
  BrowserOutputObservationSchema,
  FileDownloadObservationSchema,
  McpObservationSchema,
  GenericObservationSchema,
  GENERIC_OBSERVATION_TYPES,
} from "./protocol/observations.js";
export type {
  Observation,
  ObservationInput,
  ObservationType,
  ObservationOf,
  CmdOutputObservation,
  CmdOutputMetadata,
  IPythonRunCellObservation,
  FileReadObservation,
  FileWriteObservation,
  FileEditObservation,
  ErrorObservation,
  BrowserOutputObservation,
  FileDownloadObservation,
  McpObservation,
  GenericObservation,
} from "./protocol/observations.js";

// Protocol: codec and builders
export {
  parseAction,
  serializeAction,
  parseObservation,
  serializeObservation,
  cmdRun,
  ipythonRun,
  fileRead,
  fileWrite,
  fileEdit,
  browseUrl,
  mcpCall,
} from "./protocol/codec.js";
export type { ActionBuilderOptions, CmdRunOptions, EditRequest } from "./protocol/codec.js";

// Protocol: texts shared by server and clients
export {
  TIMEOUT_MESSAGE_TEMPLATE,
  MAX_CMD_OUTPUT_CHARS,
  OUTPUT_TRUNCATION_MARKER,
  MAX_EDITOR_RESPONSE_CHARS,
  EDITOR_CLIPPED_NOTICE,
  DEFAULT_NO_CHANGE_TIMEOUT_SECONDS,
  PREVIOUS_OUTPUT_PREFIX,
  NO_PREVIOUS_COMMAND_LOGS,
  NO_PREVIOUS_COMMAND_INPUT,
  MULTIPLE_COMMANDS_ERROR,
  BROWSER_UNSUPPORTED,
  FileErrorId,
  completedSuffix,
  completedAfterKeySuffix,
  noChangeTimeoutSuffix,
  hardTimeoutSuffix,
  notExecutedSuffix,
  truncateOutput,
} from "./protocol/constants.js";

// Runtime
export { RuntimeStatus } from "./runtime/types.js";
export type { Runtime, RuntimeProvider, RuntimeCapabilities, RuntimeHandle, StatusEvent, RunOptions } from "./runtime/types.js";

// Plugins and their context
export { definePlugin, PluginRegistry } from "./plugin.js";
export type { Plugin, PluginKind, PluginOptions, PluginInstance } from "./plugin.js";
export { noopRedactor } from "./context.js";
export type {
  PluginContext,
  Redactor,
  ResolvedSecrets,
  SecretsResolver,
  CostHooks,
  CostScope,
  SandboxCostSpec,
  LeaseInfo,
  SettlementInfo,
} from "./context.js";

// Runtime base implementation and the action-server client
export { BaseRuntime } from "./runtime/base-runtime.js";
export type { BaseRuntimeInit, ProvisionedSandbox, ProvisionRequest } from "./runtime/base-runtime.js";
export { ActionExecutionClient, mapActionServerFailure } from "./client/action-execution-client.js";
export type { ActionExecutionClientOptions, RetryPolicy, ServerInfo, McpStdioServer } from "./client/action-execution-client.js";
export { SerialQueue } from "./client/queue.js";

// Zip helpers (upload/download payloads)
export { createZip, readZip, crc32 } from "./util/zip.js";
export type { ZipEntry } from "./util/zip.js";
export { WarmPool } from "./runtime/warm-pool.js";
export type { WarmPoolOptions } from "./runtime/warm-pool.js";
