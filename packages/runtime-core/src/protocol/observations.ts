import { z } from "zod";

const envelope = {
  id: z.number().int().optional(),
  timestamp: z.string().optional(),
  source: z.string().optional(),
  message: z.string().optional(),
  cause: z.number().int().nullable().optional(),
  content: z.string(),
};

/** Metadata of a command observation; every field is null after a timeout (pid and exit_code -1). */
export const CmdOutputMetadataSchema = z.looseObject({
  exit_code: z.number().int().default(-1),
  pid: z.number().int().default(-1),
  username: z.string().nullable().default(null),
  hostname: z.string().nullable().default(null),
  working_dir: z.string().nullable().default(null),
  py_interpreter_path: z.string().nullable().default(null),
  prefix: z.string().default(""),
  suffix: z.string().default(""),
});

function obs<TType extends string, TExtras extends z.ZodType>(type: TType, extras: TExtras) {
  return z.object({ ...envelope, observation: z.literal(type), extras });
}
function obsWithSuccess<TType extends string, TExtras extends z.ZodType>(type: TType, extras: TExtras) {
  return z.object({ ...envelope, observation: z.literal(type), extras, success: z.boolean().optional() });
}

export const CmdOutputObservationSchema = obsWithSuccess(
  "run",
  z.looseObject({
    command: z.string(),
    hidden: z.boolean().default(false),
    metadata: CmdOutputMetadataSchema,
  }),
);
export const IPythonRunCellObservationSchema = obsWithSuccess(
  "run_ipython",
  z.looseObject({ code: z.string(), image_urls: z.array(z.string()).nullable().default(null) }),
);
export const FileReadObservationSchema = obs(
  "read",
  z.looseObject({ path: z.string(), impl_source: z.string().default("default") }),
);
export const FileWriteObservationSchema = obs("write", z.looseObject({ path: z.string() }));
export const FileEditObservationSchema = obs(
  "edit",
  z.looseObject({
    path: z.string(),
    prev_exist: z.boolean().default(false),
    old_content: z.string().nullable().default(null),
    new_content: z.string().nullable().default(null),
    impl_source: z.string().default("oh_aci"),
    diff: z.string().nullable().default(null),
  }),
);
export const ErrorObservationSchema = obs("error", z.looseObject({ error_id: z.string().default("") }));
export const BrowserOutputObservationSchema = obs(
  "browse",
  z.looseObject({ url: z.string(), trigger_by_action: z.string().optional(), error: z.boolean().optional() }),
);
export const FileDownloadObservationSchema = obs("download", z.looseObject({ file_path: z.string() }));
export const McpObservationSchema = obs(
  "mcp",
  z.looseObject({ name: z.string(), arguments: z.record(z.string(), z.unknown()).default({}) }),
);

/** Observation types whose extras carry no fields this package interprets. */
export const GENERIC_OBSERVATION_TYPES = [
  "null",
  "user_rejected",
  "think",
  "success",
  "agent_state_changed",
  "recall",
  "condense",
  "task_tracking",
  "loop_detection",
  "delegate",
] as const;

export const GenericObservationSchema = z.object({
  ...envelope,
  observation: z.enum(GENERIC_OBSERVATION_TYPES),
  extras: z.record(z.string(), z.unknown()).default({}),
});

/** Every observation type of the wire protocol (OpenHands V0 `event_to_dict` form). */
export const ObservationSchema = z.union([
  z.discriminatedUnion("observation", [
    CmdOutputObservationSchema,
    IPythonRunCellObservationSchema,
    FileReadObservationSchema,
    FileWriteObservationSchema,
    FileEditObservationSchema,
    ErrorObservationSchema,
    BrowserOutputObservationSchema,
    FileDownloadObservationSchema,
    McpObservationSchema,
  ]),
  GenericObservationSchema,
]);

export type Observation = z.output<typeof ObservationSchema>;
export type ObservationInput = z.input<typeof ObservationSchema>;
export type ObservationType = Observation["observation"];
export type CmdOutputObservation = z.output<typeof CmdOutputObservationSchema>;
export type CmdOutputMetadata = z.output<typeof CmdOutputMetadataSchema>;
export type IPythonRunCellObservation = z.output<typeof IPythonRunCellObservationSchema>;
export type FileReadObservation = z.output<typeof FileReadObservationSchema>;
export type FileWriteObservation = z.output<typeof FileWriteObservationSchema>;
export type FileEditObservation = z.output<typeof FileEditObservationSchema>;
export type ErrorObservation = z.output<typeof ErrorObservationSchema>;
export type BrowserOutputObservation = z.output<typeof BrowserOutputObservationSchema>;
export type FileDownloadObservation = z.output<typeof FileDownloadObservationSchema>;
export type McpObservation = z.output<typeof McpObservationSchema>;
export type GenericObservation = z.output<typeof GenericObservationSchema>;
/** Maps an observation type to its parsed shape. */
export type ObservationOf<T extends ObservationType> = Extract<Observation, { observation: T }>;
