import { z } from "zod";

/** `security_risk` on the wire: -1 unknown, 0 low, 1 medium, 2 high. */
export const SecurityRiskSchema = z.union([z.literal(-1), z.literal(0), z.literal(1), z.literal(2)]);
/** `confirmation_state` on the wire. */
export const ConfirmationStateSchema = z.enum(["confirmed", "rejected", "awaiting_confirmation"]);

const common = {
  thought: z.string().default(""),
  security_risk: SecurityRiskSchema.default(-1),
};

/** `args` of `run` (CmdRunAction). */
export const CmdRunArgsSchema = z.looseObject({
  command: z.string(),
  is_input: z.boolean().default(false),
  thought: common.thought,
  blocking: z.boolean().default(false),
  is_static: z.boolean().default(false),
  cwd: z.string().nullable().default(null),
  hidden: z.boolean().default(false),
  confirmation_state: ConfirmationStateSchema.default("confirmed"),
  security_risk: common.security_risk,
});

/** `args` of `run_ipython` (IPythonRunCellAction). */
export const IPythonRunCellArgsSchema = z.looseObject({
  code: z.string(),
  ...common,
  include_extra: z.boolean().default(true),
  confirmation_state: ConfirmationStateSchema.default("confirmed"),
  kernel_init_code: z.string().default(""),
});

/** `args` of `read` (FileReadAction). `start`/`end` are 0-based lines, `end` exclusive, -1 = to the end. */
export const FileReadArgsSchema = z.looseObject({
  path: z.string().min(1, "path must not be empty"),
  start: z.number().int().default(0),
  end: z.number().int().default(-1),
  ...common,
  impl_source: z.enum(["default", "oh_aci"]).default("default"),
  view_range: z.array(z.number().int()).nullable().default(null),
});

/** `args` of `write` (FileWriteAction). */
export const FileWriteArgsSchema = z.looseObject({
  path: z.string().min(1, "path must not be empty"),
  content: z.string(),
  start: z.number().int().default(0),
  end: z.number().int().default(-1),
  ...common,
});

/** The str_replace_editor commands. */
export const EditCommandSchema = z.enum(["view", "create", "str_replace", "insert", "undo_edit"]);

/** `args` of `edit` (FileEditAction). */
export const FileEditArgsSchema = z.looseObject({
  path: z.string().min(1, "path must not be empty"),
  command: EditCommandSchema,
  file_text: z.string().nullable().default(null),
  old_str: z.string().nullable().default(null),
  new_str: z.string().nullable().default(null),
  insert_line: z.number().int().nullable().default(null),
  content: z.string().default(""),
  start: z.number().int().default(1),
  end: z.number().int().default(-1),
  ...common,
  impl_source: z.enum(["oh_aci", "llm_based_edit"]).default("oh_aci"),
});

/** `args` of `browse` (BrowseURLAction). */
export const BrowseUrlArgsSchema = z.looseObject({
  url: z.string(),
  ...common,
  return_axtree: z.boolean().default(false),
});

/** `args` of `browse_interactive` (BrowseInteractiveAction). */
export const BrowseInteractiveArgsSchema = z.looseObject({
  browser_actions: z.string(),
  ...common,
  browsergym_send_msg_to_user: z.string().default(""),
  return_axtree: z.boolean().default(false),
});

/** `args` of `call_tool_mcp` (MCPAction): executed by the host, never sent to the sandbox. */
export const McpArgsSchema = z.looseObject({
  name: z.string(),
  arguments: z.record(z.string(), z.unknown()).default({}),
  ...common,
});

const envelope = {
  id: z.number().int().optional(),
  timestamp: z.string().optional(),
  source: z.string().optional(),
  message: z.string().optional(),
  cause: z.number().int().nullable().optional(),
  /** Hard timeout in seconds (a float on the wire). */
  timeout: z.number().positive().nullable().optional(),
  tool_call_metadata: z.unknown().optional(),
  llm_metrics: z.unknown().optional(),
};

function actionSchema<TType extends string, TArgs extends z.ZodType>(type: TType, args: TArgs) {
  return z.object({ ...envelope, action: z.literal(type), args });
}

export const CmdRunActionSchema = actionSchema("run", CmdRunArgsSchema);
export const IPythonRunCellActionSchema = actionSchema("run_ipython", IPythonRunCellArgsSchema);
export const FileReadActionSchema = actionSchema("read", FileReadArgsSchema);
export const FileWriteActionSchema = actionSchema("write", FileWriteArgsSchema);
export const FileEditActionSchema = actionSchema("edit", FileEditArgsSchema);
export const BrowseUrlActionSchema = actionSchema("browse", BrowseUrlArgsSchema);
export const BrowseInteractiveActionSchema = actionSchema("browse_interactive", BrowseInteractiveArgsSchema);
export const McpActionSchema = actionSchema("call_tool_mcp", McpArgsSchema);

/** Every action type of the wire protocol (OpenHands V0 `event_to_dict` form). */
export const ActionSchema = z.discriminatedUnion("action", [
  CmdRunActionSchema,
  IPythonRunCellActionSchema,
  FileReadActionSchema,
  FileWriteActionSchema,
  FileEditActionSchema,
  BrowseUrlActionSchema,
  BrowseInteractiveActionSchema,
  McpActionSchema,
]);

/** The action types a sandbox can be asked to run. */
export const ACTION_TYPES = [
  "run",
  "run_ipython",
  "read",
  "write",
  "edit",
  "browse",
  "browse_interactive",
  "call_tool_mcp",
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** An action as parsed (defaults filled in). */
export type Action = z.output<typeof ActionSchema>;
/** An action as a user may write it (defaults optional). */
export type ActionInput = z.input<typeof ActionSchema>;
export type CmdRunAction = z.output<typeof CmdRunActionSchema>;
export type IPythonRunCellAction = z.output<typeof IPythonRunCellActionSchema>;
export type FileReadAction = z.output<typeof FileReadActionSchema>;
export type FileWriteAction = z.output<typeof FileWriteActionSchema>;
export type FileEditAction = z.output<typeof FileEditActionSchema>;
export type BrowseUrlAction = z.output<typeof BrowseUrlActionSchema>;
export type BrowseInteractiveAction = z.output<typeof BrowseInteractiveActionSchema>;
export type McpAction = z.output<typeof McpActionSchema>;
/** Maps an action type to its parsed shape. */
export type ActionOf<T extends ActionType> = Extract<Action, { action: T }>;

/** The body of `POST /execute_action`. */
export const ExecuteActionRequestSchema = z.object({ action: z.unknown() });
