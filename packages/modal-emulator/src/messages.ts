/**
 * Request shapes as proto-loader decodes them (`keepCase`, `defaults: false`): proto field names, and absent
 * fields are `undefined`. Only the fields the emulator reads are listed.
 */

/** `modal.client.StringMap`. */
export interface StringMapMsg {
  contents?: Record<string, string>;
}

/** `modal.client.SecretSource`. */
export interface SecretSourceMsg {
  secret_id?: string;
  env?: StringMapMsg;
}

/** `modal.client.SandboxTag`. */
export interface SandboxTagMsg {
  tag_name?: string;
  tag_value?: string;
}

/** `modal.client.Sandbox` (the definition). */
export interface SandboxDefinitionMsg {
  entrypoint_args?: string[];
  image_id?: string;
  secret_ids?: string[];
  resources?: {
    memory_mb?: number;
    milli_cpu?: number;
    memory_mb_max?: number;
    milli_cpu_max?: number;
    gpu_config?: { type?: number; count?: number; gpu_type?: string };
  };
  timeout_secs?: number;
  workdir?: string;
  scheduler_placement?: { regions?: string[] };
  open_ports?: { ports?: { port?: number; unencrypted?: boolean; tunnel_type?: number }[] };
  name?: string;
  idle_timeout_secs?: number;
  environment_variables?: StringMapMsg;
}

/** `SandboxCreateRequest` and `SandboxCreateV2Request` (V2 adds `secret_sources` and `ephemeral_secrets`). */
export interface SandboxCreateMsg {
  app_id?: string;
  definition?: SandboxDefinitionMsg;
  environment_name?: string;
  tags?: SandboxTagMsg[];
  ephemeral_secrets?: StringMapMsg;
  secret_sources?: SecretSourceMsg[];
}

/** Requests that name one sandbox. */
export interface SandboxIdMsg {
  sandbox_id?: string;
  timeout?: number;
}

/** `SandboxGetCommandRouterAccessRequest` / `TaskGetCommandRouterAccessRequest`. */
export interface RouterAccessMsg {
  sandbox_id?: string;
  task_id?: string;
}

/** `SandboxListRequest`. */
export interface SandboxListMsg {
  app_id?: string;
  before_timestamp?: number;
  environment_name?: string;
  include_finished?: boolean;
  tags?: SandboxTagMsg[];
}

/** `SandboxTagsSetRequest`. */
export interface SandboxTagsSetMsg {
  sandbox_id?: string;
  tags?: SandboxTagMsg[];
}

/** `SandboxGetFromNameRequest`. */
export interface SandboxGetFromNameMsg {
  sandbox_name?: string;
  environment_name?: string;
  app_name?: string;
  include_terminated?: boolean;
}

/** `SandboxGetLogsRequest`. */
export interface SandboxGetLogsMsg {
  sandbox_id?: string;
  file_descriptor?: number;
  timeout?: number;
  last_entry_id?: string;
}

/** `SandboxStdinWriteRequest`. */
export interface SandboxStdinWriteMsg {
  sandbox_id?: string;
  input?: Buffer;
  index?: number;
  eof?: boolean;
}

/** `AppGetOrCreateRequest` / `AppLookupRequest`. */
export interface AppGetOrCreateMsg {
  app_name?: string;
  environment_name?: string;
  object_creation_type?: number;
}

/** `EnvironmentGetOrCreateRequest`. */
export interface EnvironmentGetOrCreateMsg {
  deployment_name?: string;
}

/** `ImageGetOrCreateRequest`. */
export interface ImageGetOrCreateMsg {
  app_id?: string;
  image?: {
    base_images?: { image_id?: string; docker_tag?: string }[];
    dockerfile_commands?: string[];
    secret_ids?: string[];
    gpu_config?: { gpu_type?: string; count?: number };
  };
  force_build?: boolean;
  builder_version?: string;
}

/** `ImageJoinStreamingRequest`. */
export interface ImageJoinStreamingMsg {
  image_id?: string;
  timeout?: number;
  last_entry_id?: string;
  include_logs_for_finished?: boolean;
}

/** `SecretGetOrCreateRequest`. */
export interface SecretGetOrCreateMsg {
  deployment_name?: string;
  environment_name?: string;
  object_creation_type?: number;
  env_dict?: Record<string, string>;
  required_keys?: string[];
}

/** `TaskExecStartRequest`. */
export interface TaskExecStartMsg {
  task_id?: string;
  exec_id?: string;
  command_args?: string[];
  stdout_config?: number;
  stderr_config?: number;
  timeout_secs?: number;
  workdir?: string;
  secret_ids?: string[];
  env?: Record<string, string>;
  secret_sources?: SecretSourceMsg[];
}

/** Router requests that name one exec. */
export interface ExecIdMsg {
  task_id?: string;
  exec_id?: string;
}

/** `TaskExecStdioReadRequest`. */
export interface TaskExecStdioReadMsg extends ExecIdMsg {
  offset?: number;
  file_descriptor?: number;
}

/** `TaskExecStdinWriteRequest`. */
export interface TaskExecStdinWriteMsg extends ExecIdMsg {
  offset?: number;
  data?: Buffer;
  eof?: boolean;
}

/** `TaskExecStdinWriteStreamRequest`. */
export interface TaskExecStdinWriteStreamMsg {
  start?: { task_id?: string; exec_id?: string; offset?: number };
  data?: Buffer;
  end?: object;
}

/** `SandboxStdioReadV2Request`. */
export interface SandboxStdioReadV2Msg {
  task_id?: string;
  offset?: number;
  file_descriptor?: number;
}

/** `SandboxStdinWriteV2Request`. */
export interface SandboxStdinWriteV2Msg {
  task_id?: string;
  offset?: number;
  data?: Buffer;
  eof?: boolean;
}
