/**
 * @agent-runtime/runtime-core: the protocol, the Runtime interface, the action-server client, plugins,
 * errors and logging that every agent-runtime package shares.
 */

export type {
  ActionExecutionClientOptions,
  McpStdioServer,
  RetryPolicy,
  ServerInfo,
} from "./client/action-execution-client.js";
export { ActionExecutionClient, mapActionServerFailure } from "./client/action-execution-client.js";
export { NDJSON_MEDIA_TYPE } from "./client/ndjson.js";
export { SerialQueue } from "./client/queue.js";
export type {
  BudgetStatus,
  CostHooks,
  CostPlugin,
  CostReportRow,
  CostScope,
  LeaseInfo,
  LeaseRecord,
  OrphanSweepReport,
  PluginContext,
  RedactionStream,
  Redactor,
  ResolvedSecrets,
  SandboxCostSpec,
  SecretReference,
  SecretsPlugin,
  SecretsResolver,
  SettlementInfo,
} from "./context.js";
export { noopRedactor } from "./context.js";
export type { RuntimeErrorOptions } from "./errors.js";
// Errors
export { ErrorCode, InvalidArgumentError, isRuntimeError, RuntimeError, toRuntimeError } from "./errors.js";
export type { GpuCatalogue, GpuRequest } from "./gpu.js";
export { parseGpuRequest } from "./gpu.js";
export type { InventorySandbox, SandboxInventory } from "./inventory.js";
export { LEASE_TAG_KEY } from "./inventory.js";
export type { LogFields, Logger } from "./logger.js";
// Logging
export { fromPino, quietLogger, redactingLogger, silentLogger } from "./logger.js";
export type {
  AnyPlugin,
  Plugin,
  PluginInstance,
  PluginInstances,
  PluginKind,
  PluginOptions,
} from "./plugin.js";
// Plugins and their context
export {
  assertPluginInstance,
  createPluginInstance,
  definePlugin,
  isPlugin,
  PluginRegistry,
  resolvePluginOptions,
} from "./plugin.js";
export type {
  Action,
  ActionInput,
  ActionOf,
  ActionType,
  BrowseInteractiveAction,
  BrowseUrlAction,
  CmdRunAction,
  FileEditAction,
  FileReadAction,
  FileWriteAction,
  IPythonRunCellAction,
  McpAction,
} from "./protocol/actions.js";
// Protocol: actions
export {
  ACTION_TYPES,
  ActionSchema,
  BrowseInteractiveActionSchema,
  BrowseUrlActionSchema,
  CmdRunActionSchema,
  CmdRunArgsSchema,
  ConfirmationStateSchema,
  EditCommandSchema,
  FileEditActionSchema,
  FileReadActionSchema,
  FileWriteActionSchema,
  IPythonRunCellActionSchema,
  McpActionSchema,
  SecurityRiskSchema,
} from "./protocol/actions.js";
export type { ActionBuilderOptions, CmdRunOptions, EditRequest } from "./protocol/codec.js";
// Protocol: codec and builders
export {
  browseUrl,
  cmdRun,
  fileEdit,
  fileRead,
  fileWrite,
  ipythonRun,
  mcpCall,
  parseAction,
  parseObservation,
  serializeAction,
  serializeObservation,
  toAction,
} from "./protocol/codec.js";
// Protocol: texts shared by server and clients
export {
  BROWSER_UNSUPPORTED,
  completedAfterKeySuffix,
  completedSuffix,
  DEFAULT_NO_CHANGE_TIMEOUT_SECONDS,
  EDITOR_CLIPPED_NOTICE,
  FileErrorId,
  hardTimeoutSuffix,
  MAX_CMD_OUTPUT_CHARS,
  MAX_EDITOR_RESPONSE_CHARS,
  MULTIPLE_COMMANDS_ERROR,
  NO_PREVIOUS_COMMAND_INPUT,
  NO_PREVIOUS_COMMAND_LOGS,
  noChangeTimeoutSuffix,
  notExecutedSuffix,
  OUTPUT_TRUNCATION_MARKER,
  PREVIOUS_OUTPUT_PREFIX,
  TIMEOUT_MESSAGE_TEMPLATE,
  truncateOutput,
} from "./protocol/constants.js";
export type {
  BrowserOutputObservation,
  CmdOutputMetadata,
  CmdOutputObservation,
  ErrorObservation,
  FileDownloadObservation,
  FileEditObservation,
  FileReadObservation,
  FileWriteObservation,
  GenericObservation,
  IPythonRunCellObservation,
  McpObservation,
  Observation,
  ObservationInput,
  ObservationOf,
  ObservationType,
} from "./protocol/observations.js";
// Protocol: observations
export {
  BrowserOutputObservationSchema,
  CmdOutputMetadataSchema,
  CmdOutputObservationSchema,
  ErrorObservationSchema,
  FileDownloadObservationSchema,
  FileEditObservationSchema,
  FileReadObservationSchema,
  FileWriteObservationSchema,
  GENERIC_OBSERVATION_TYPES,
  GenericObservationSchema,
  IPythonRunCellObservationSchema,
  McpObservationSchema,
  ObservationSchema,
} from "./protocol/observations.js";
export type { BaseRuntimeInit, ProvisionedSandbox, ProvisionRequest } from "./runtime/base-runtime.js";
// Runtime base implementation and the action-server client
export { BaseRuntime } from "./runtime/base-runtime.js";
export type { LeaseKeeperOptions, LeaseRequest } from "./runtime/lease-keeper.js";
// The cost lease of a runtime (BaseRuntime holds one; third-party runtimes may use it directly)
export { LeaseKeeper } from "./runtime/lease-keeper.js";
export type {
  CreateRuntimeInput,
  ResolvedCreateRuntimeInput,
  ResolvedSessionOverrides,
  SessionOverrideField,
  SessionOverrides,
} from "./runtime/overrides.js";
// Per-session overrides of RuntimeProvider.create
export {
  CreateRuntimeInputSchema,
  checkSessionTimeouts,
  invalidOverrides,
  overridesOf,
  parseCreateRuntimeInput,
  RENAMED_OVERRIDES,
  SANDBOX_OVERRIDE_FIELDS,
  SESSION_OVERRIDE_FIELDS,
  SessionOverridesSchema,
} from "./runtime/overrides.js";
// Redaction of live output (a secret split across chunks is still caught)
export { redactionStream } from "./runtime/redaction.js";
export { provisionSecretFiles } from "./runtime/secret-files.js";
export type {
  DownloadToOptions,
  RunOptions,
  Runtime,
  RuntimeCapabilities,
  RuntimeHandle,
  RuntimeProvider,
  StatusEvent,
} from "./runtime/types.js";
// Runtime
export { RuntimeStatus } from "./runtime/types.js";
export type { WarmPoolOptions } from "./runtime/warm-pool.js";
export { WarmPool } from "./runtime/warm-pool.js";
export type { ZipEntry } from "./util/zip.js";
// Zip helpers (upload/download payloads)
export { crc32, createZip, readZip } from "./util/zip.js";
// Validation helpers
export {
  checkRenamedOptions,
  formatIssuePath,
  formatZodIssues,
  parseOrThrow,
  renamedOptionIssues,
} from "./validation.js";
