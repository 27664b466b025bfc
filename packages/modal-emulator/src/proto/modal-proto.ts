/**
 * The hand-written subset of Modal's protos that the emulator serves: the same package, service and method
 * names and the upstream field numbers as `modal@0.11.1`'s compiled codecs, only the fields the sandbox flow
 * uses. Enums are declared as `int32` (the wire format is the same). `test/proto-drift.test.ts` compares every
 * field here with the pinned SDK, so a bump of `modal` fails loudly where the wire changed.
 *
 * The text is embedded (not read from a file next to the bundle) so the package works from its tarball and
 * through the vitest source alias alike; the build also writes it to `dist/modal_proto/` for reading.
 * Longer than 400 lines because it is proto text, not code.
 */

/** `modal_proto/api.proto` (subset): package `modal.client`, service `ModalClient`. */
export const MODAL_API_PROTO = `// Subset of modal-labs/modal-client modal_proto/api.proto, field numbers as in modal@0.11.1.
syntax = "proto3";

package modal.client;

message Empty {}

// GenericStatus: 0 UNSPECIFIED, 1 SUCCESS, 2 FAILURE, 3 TERMINATED, 4 TIMEOUT, 5 INIT_FAILURE,
// 6 INTERNAL_FAILURE, 7 IDLE_TIMEOUT, 8 MEMORY_MANAGER_EVICTION.
message GenericResult {
  int32 status = 1;
  string exception = 2;
  int32 exitcode = 3;
  string traceback = 4;
}

message StringMap {
  map<string, string> contents = 1;
}

message SecretSource {
  oneof source {
    string secret_id = 1;
    StringMap env = 2;
  }
}

message AuthTokenGetRequest {}

message AuthTokenGetResponse {
  string token = 1;
}

message AppGetOrCreateRequest {
  string app_name = 1;
  string environment_name = 2;
  int32 object_creation_type = 3;
}

message AppGetOrCreateResponse {
  string app_id = 1;
}

message AppLookupRequest {
  string app_name = 2;
  string environment_name = 3;
}

message AppLookupResponse {
  string app_id = 1;
}

message EnvironmentSettings {
  string image_builder_version = 1;
  string webhook_suffix = 2;
}

message EnvironmentMetadata {
  string name = 1;
  EnvironmentSettings settings = 2;
}

message EnvironmentGetOrCreateRequest {
  string deployment_name = 1;
  int32 object_creation_type = 2;
}

message EnvironmentGetOrCreateResponse {
  string environment_id = 1;
  EnvironmentMetadata metadata = 2;
}

message GPUConfig {
  int32 type = 1;
  uint32 count = 2;
  string gpu_type = 4;
}

message BaseImage {
  string image_id = 1;
  string docker_tag = 2;
}

message Image {
  repeated BaseImage base_images = 5;
  repeated string dockerfile_commands = 6;
  repeated string secret_ids = 12;
  GPUConfig gpu_config = 16;
}

message ImageMetadata {
  string workdir = 3;
  string image_builder_version = 5;
}

message ImageGetOrCreateRequest {
  Image image = 2;
  string app_id = 4;
  string existing_image_id = 5;
  bool force_build = 7;
  string builder_version = 9;
}

message ImageGetOrCreateResponse {
  string image_id = 1;
  GenericResult result = 2;
  ImageMetadata metadata = 3;
}

message ImageJoinStreamingRequest {
  string image_id = 1;
  float timeout = 2;
  string last_entry_id = 3;
  bool include_logs_for_finished = 4;
}

message TaskLogs {
  string data = 1;
  int32 task_state = 6;
  double timestamp = 7;
  int32 file_descriptor = 8;
}

message ImageJoinStreamingResponse {
  GenericResult result = 1;
  repeated TaskLogs task_logs = 2;
  string entry_id = 3;
  bool eof = 4;
  ImageMetadata metadata = 5;
}

message SecretGetOrCreateRequest {
  string deployment_name = 1;
  string environment_name = 3;
  int32 object_creation_type = 4;
  map<string, string> env_dict = 5;
  string app_id = 6;
  repeated string required_keys = 7;
}

message SecretGetOrCreateResponse {
  string secret_id = 1;
}

message Resources {
  uint32 memory_mb = 2;
  uint32 milli_cpu = 3;
  GPUConfig gpu_config = 4;
  uint32 memory_mb_max = 5;
  uint32 milli_cpu_max = 7;
}

message PortSpec {
  uint32 port = 1;
  bool unencrypted = 2;
  optional int32 tunnel_type = 3;
}

message PortSpecs {
  repeated PortSpec ports = 1;
}

message SchedulerPlacement {
  repeated string regions = 4;
}

message Sandbox {
  repeated string entrypoint_args = 1;
  string image_id = 3;
  repeated string secret_ids = 4;
  Resources resources = 5;
  uint32 timeout_secs = 7;
  optional string workdir = 8;
  SchedulerPlacement scheduler_placement = 17;
  PortSpecs open_ports = 20;
  optional string name = 30;
  optional uint32 idle_timeout_secs = 33;
  StringMap environment_variables = 40;
}

message SandboxTag {
  string tag_name = 1;
  string tag_value = 2;
}

message SandboxHandleMetadata {
  GenericResult result = 1;
  string app_id = 2;
}

message SandboxCreateRequest {
  string app_id = 1;
  Sandbox definition = 2;
  string environment_name = 3;
  repeated SandboxTag tags = 4;
}

message SandboxCreateResponse {
  string sandbox_id = 1;
  SandboxHandleMetadata metadata = 2;
}

message SandboxCreateV2Request {
  string app_id = 1;
  Sandbox definition = 2;
  StringMap ephemeral_secrets = 3;
  repeated SandboxTag tags = 4;
  repeated SecretSource secret_sources = 6;
}

message TunnelData {
  string host = 1;
  uint32 port = 2;
  optional string unencrypted_host = 3;
  optional uint32 unencrypted_port = 4;
  uint32 container_port = 5;
}

message CommandRouterAccess {
  string jwt = 1;
  string url = 2;
}

message SandboxCreateV2Response {
  string sandbox_id = 1;
  repeated TunnelData tunnels = 2;
  string task_id = 3;
  SandboxHandleMetadata metadata = 4;
  CommandRouterAccess command_router_access = 5;
}

message SandboxGetTaskIdRequest {
  string sandbox_id = 1;
  optional float timeout = 2;
  bool wait_until_ready = 3;
}

message SandboxGetTaskIdResponse {
  optional string task_id = 1;
  optional GenericResult task_result = 2;
}

message TaskGetCommandRouterAccessRequest {
  string task_id = 1;
}

message TaskGetCommandRouterAccessResponse {
  string jwt = 1;
  string url = 2;
}

message SandboxGetCommandRouterAccessRequest {
  oneof target {
    string sandbox_id = 1;
    string task_id = 2;
  }
}

message SandboxGetCommandRouterAccessResponse {
  string jwt = 1;
  string url = 2;
}

message SandboxGetTunnelsRequest {
  string sandbox_id = 1;
  float timeout = 2;
}

message SandboxGetTunnelsResponse {
  GenericResult result = 1;
  repeated TunnelData tunnels = 2;
}

message SandboxWaitRequest {
  string sandbox_id = 1;
  float timeout = 2;
}

message SandboxWaitResponse {
  GenericResult result = 1;
  SandboxHandleMetadata metadata = 2;
}

message SandboxTerminateRequest {
  string sandbox_id = 1;
}

message SandboxTerminateResponse {
  GenericResult existing_result = 1;
}

message SandboxListRequest {
  string app_id = 1;
  double before_timestamp = 2;
  string environment_name = 3;
  bool include_finished = 4;
  repeated SandboxTag tags = 5;
}

message TaskInfo {
  string id = 1;
  double started_at = 2;
  double finished_at = 3;
  GenericResult result = 4;
  string sandbox_id = 7;
}

message SandboxInfo {
  string id = 1;
  double created_at = 3;
  TaskInfo task_info = 4;
  string app_id = 5;
  repeated SandboxTag tags = 6;
  string name = 7;
  string image_id = 8;
  uint32 timeout_secs = 11;
  uint32 idle_timeout_secs = 12;
}

message SandboxListResponse {
  repeated SandboxInfo sandboxes = 1;
}

message SandboxTagsSetRequest {
  string environment_name = 1;
  string sandbox_id = 2;
  repeated SandboxTag tags = 3;
}

message SandboxTagsGetRequest {
  string sandbox_id = 1;
}

message SandboxTagsGetResponse {
  repeated SandboxTag tags = 1;
}

message SandboxGetFromNameRequest {
  string sandbox_name = 1;
  string environment_name = 2;
  string app_name = 3;
  bool include_terminated = 4;
}

message SandboxGetFromNameResponse {
  string sandbox_id = 1;
  SandboxHandleMetadata metadata = 2;
}

message SandboxGetLogsRequest {
  string sandbox_id = 1;
  int32 file_descriptor = 2;
  float timeout = 3;
  string last_entry_id = 4;
}

message TaskLogsBatch {
  string task_id = 1;
  repeated TaskLogs items = 2;
  string entry_id = 5;
  bool eof = 14;
  string sandbox_id = 18;
}

message SandboxStdinWriteRequest {
  string sandbox_id = 1;
  bytes input = 2;
  uint32 index = 3;
  bool eof = 4;
}

message SandboxStdinWriteResponse {}

service ModalClient {
  rpc AuthTokenGet(AuthTokenGetRequest) returns (AuthTokenGetResponse);
  rpc AppGetOrCreate(AppGetOrCreateRequest) returns (AppGetOrCreateResponse);
  rpc AppLookup(AppLookupRequest) returns (AppLookupResponse);
  rpc EnvironmentGetOrCreate(EnvironmentGetOrCreateRequest) returns (EnvironmentGetOrCreateResponse);
  rpc ImageGetOrCreate(ImageGetOrCreateRequest) returns (ImageGetOrCreateResponse);
  rpc ImageJoinStreaming(ImageJoinStreamingRequest) returns (stream ImageJoinStreamingResponse);
  rpc SecretGetOrCreate(SecretGetOrCreateRequest) returns (SecretGetOrCreateResponse);
  rpc SandboxCreate(SandboxCreateRequest) returns (SandboxCreateResponse);
  rpc SandboxCreateV2(SandboxCreateV2Request) returns (SandboxCreateV2Response);
  rpc SandboxGetTaskId(SandboxGetTaskIdRequest) returns (SandboxGetTaskIdResponse);
  rpc SandboxGetTaskIdV2(SandboxGetTaskIdRequest) returns (SandboxGetTaskIdResponse);
  rpc TaskGetCommandRouterAccess(TaskGetCommandRouterAccessRequest) returns (TaskGetCommandRouterAccessResponse);
  rpc SandboxGetCommandRouterAccess(SandboxGetCommandRouterAccessRequest) returns (SandboxGetCommandRouterAccessResponse);
  rpc SandboxGetTunnels(SandboxGetTunnelsRequest) returns (SandboxGetTunnelsResponse);
  rpc SandboxGetTunnelsV2(SandboxGetTunnelsRequest) returns (SandboxGetTunnelsResponse);
  rpc SandboxWait(SandboxWaitRequest) returns (SandboxWaitResponse);
  rpc SandboxWaitV2(SandboxWaitRequest) returns (SandboxWaitResponse);
  rpc SandboxTerminate(SandboxTerminateRequest) returns (SandboxTerminateResponse);
  rpc SandboxTerminateV2(SandboxTerminateRequest) returns (SandboxTerminateResponse);
  rpc SandboxList(SandboxListRequest) returns (SandboxListResponse);
  rpc SandboxListV2(SandboxListRequest) returns (SandboxListResponse);
  rpc SandboxTagsSet(SandboxTagsSetRequest) returns (Empty);
  rpc SandboxTagsSetV2(SandboxTagsSetRequest) returns (Empty);
  rpc SandboxTagsGet(SandboxTagsGetRequest) returns (SandboxTagsGetResponse);
  rpc SandboxTagsGetV2(SandboxTagsGetRequest) returns (SandboxTagsGetResponse);
  rpc SandboxGetFromName(SandboxGetFromNameRequest) returns (SandboxGetFromNameResponse);
  rpc SandboxGetFromNameV2(SandboxGetFromNameRequest) returns (SandboxGetFromNameResponse);
  rpc SandboxGetLogs(SandboxGetLogsRequest) returns (stream TaskLogsBatch);
  rpc SandboxStdinWrite(SandboxStdinWriteRequest) returns (SandboxStdinWriteResponse);
}
`;

/** `modal_proto/task_command_router.proto` (subset): package `modal.task_command_router`. */
export const MODAL_ROUTER_PROTO = `// Subset of modal-labs/modal-client modal_proto/task_command_router.proto, field numbers as in modal@0.11.1.
syntax = "proto3";

package modal.task_command_router;

import "modal_proto/api.proto";

// stdout_config: 0 DEVNULL, 1 PIPE. stderr_config: 0 DEVNULL, 1 PIPE, 2 STDOUT (merged).
message TaskExecStartRequest {
  string task_id = 1;
  string exec_id = 2;
  repeated string command_args = 3;
  int32 stdout_config = 4;
  int32 stderr_config = 5;
  optional uint32 timeout_secs = 6;
  optional string workdir = 7;
  repeated string secret_ids = 8;
  string container_id = 11;
  map<string, string> env = 12;
  repeated modal.client.SecretSource secret_sources = 13;
}

message TaskExecStartResponse {}

// file_descriptor: 0 STDOUT, 1 STDERR.
message TaskExecStdioReadRequest {
  string task_id = 1;
  string exec_id = 2;
  uint64 offset = 3;
  int32 file_descriptor = 4;
}

message TaskExecStdioReadResponse {
  bytes data = 1;
}

message TaskExecWaitRequest {
  string task_id = 1;
  string exec_id = 2;
}

message TaskExecWaitResponse {
  oneof exit_status {
    int32 code = 1;
    int32 signal = 2;
  }
}

message TaskExecPollRequest {
  string task_id = 1;
  string exec_id = 2;
}

message TaskExecPollResponse {
  oneof exit_status {
    int32 code = 1;
    int32 signal = 2;
  }
}

message TaskExecStdinWriteRequest {
  string task_id = 1;
  string exec_id = 2;
  uint64 offset = 3;
  bytes data = 4;
  bool eof = 5;
}

message TaskExecStdinWriteResponse {}

message TaskExecStdinWriteStreamStart {
  string task_id = 1;
  string exec_id = 2;
  uint64 offset = 3;
}

message TaskExecStdinWriteStreamEnd {}

message TaskExecStdinWriteStreamRequest {
  oneof payload {
    TaskExecStdinWriteStreamStart start = 1;
    bytes data = 2;
    TaskExecStdinWriteStreamEnd end = 3;
  }
}

message TaskExecStdinWriteStreamResponse {}

message TaskExecStdinStatusRequest {
  string task_id = 1;
  string exec_id = 2;
}

message TaskExecStdinStatusResponse {
  uint64 num_bytes_written = 1;
  bool closed = 2;
}

message SandboxStdioReadV2Request {
  string task_id = 1;
  uint64 offset = 2;
  int32 file_descriptor = 3;
}

message SandboxStdioReadV2Response {
  bytes data = 1;
  uint64 starting_offset = 2;
}

message SandboxStdinWriteV2Request {
  string task_id = 1;
  uint64 offset = 2;
  bytes data = 3;
  bool eof = 4;
}

message SandboxStdinWriteV2Response {}

message SandboxWaitUntilReadyTcrRequest {
  string task_id = 1;
  float timeout = 2;
}

message SandboxWaitUntilReadyTcrResponse {
  double ready_at = 1;
}

service TaskCommandRouter {
  rpc TaskExecStart(TaskExecStartRequest) returns (TaskExecStartResponse);
  rpc TaskExecStdioRead(TaskExecStdioReadRequest) returns (stream TaskExecStdioReadResponse);
  rpc TaskExecWait(TaskExecWaitRequest) returns (TaskExecWaitResponse);
  rpc TaskExecPoll(TaskExecPollRequest) returns (TaskExecPollResponse);
  rpc TaskExecStdinWrite(TaskExecStdinWriteRequest) returns (TaskExecStdinWriteResponse);
  rpc TaskExecStdinWriteStream(stream TaskExecStdinWriteStreamRequest) returns (TaskExecStdinWriteStreamResponse);
  rpc TaskExecStdinStatus(TaskExecStdinStatusRequest) returns (TaskExecStdinStatusResponse);
  rpc SandboxStdioReadV2(SandboxStdioReadV2Request) returns (stream SandboxStdioReadV2Response);
  rpc SandboxStdinWriteV2(SandboxStdinWriteV2Request) returns (SandboxStdinWriteV2Response);
  rpc SandboxWaitUntilReady(SandboxWaitUntilReadyTcrRequest) returns (SandboxWaitUntilReadyTcrResponse);
}
`;

/** The relative file names under which the two protos are written (the router proto imports the api one). */
export const PROTO_FILES = {
  api: "modal_proto/api.proto",
  router: "modal_proto/task_command_router.proto",
} as const;
