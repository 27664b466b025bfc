import type { z } from "zod";
import { InvalidArgumentError } from "../errors.js";
import { formatZodIssues } from "../validation.js";
import {
  ACTION_TYPES,
  type Action,
  type ActionInput,
  ActionSchema,
  type BrowseUrlAction,
  type CmdRunAction,
  type FileEditAction,
  type FileReadAction,
  type FileWriteAction,
  type IPythonRunCellAction,
  type McpAction,
} from "./actions.js";
import { type Observation, type ObservationInput, ObservationSchema } from "./observations.js";

function fail(what: string, error: z.ZodError, prefix: string): never {
  const issues = formatZodIssues(error, prefix);
  throw new InvalidArgumentError(`Invalid ${what}:\n  ${issues.join("\n  ")}`, issues);
}

/**
 * Parses a wire action (`{action, args, timeout?, ...}`), filling defaults. Unknown action types and
 * malformed fields throw INVALID_ARGUMENT naming the path (e.g. `action.args.command: expected string`).
 */
export function parseAction(input: unknown, pathPrefix = "action"): Action {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new InvalidArgumentError(
      `Invalid action: ${pathPrefix}: expected an object like {"action":"run","args":{...}}`,
      [`${pathPrefix}: expected object`],
    );
  }
  const type = (input as { action?: unknown }).action;
  if (typeof type !== "string" || !(ACTION_TYPES as readonly string[]).includes(type)) {
    const issue = `${pathPrefix}.action: unknown action type ${JSON.stringify(type)}; expected one of ${ACTION_TYPES.join(", ")}`;
    throw new InvalidArgumentError(`Invalid action: ${issue}`, [issue]);
  }
  const result = ActionSchema.safeParse(input);
  if (!result.success) fail("action", result.error, pathPrefix);
  PARSED_ACTIONS.add(result.data);
  return result.data;
}

/**
 * Actions that {@link parseAction} (or a builder, which goes through it) returned: they are typed and complete,
 * so {@link toAction} passes them on without a second parse. A WeakSet, not a mark on the object: a copy, a
 * JSON round trip or an object from another copy of this package is simply parsed again.
 */
const PARSED_ACTIONS = new WeakSet<object>();

/**
 * The action as a typed value, parsed only when it was not parsed already: an action built by a builder
 * (`cmdRun`...) or returned by {@link parseAction} is passed through as is; anything else (a plain object from a
 * user) is parsed once, with INVALID_ARGUMENT naming the path of every issue.
 */
export function toAction(input: unknown, pathPrefix = "action"): Action {
  if (typeof input === "object" && input !== null && PARSED_ACTIONS.has(input)) return input as Action;
  return parseAction(input, pathPrefix);
}

/**
 * Formats an action in its wire form (envelope fields in OpenHands' `event_to_dict` order). It only formats: it
 * neither validates nor fills defaults, so pass an action from {@link parseAction} or a builder (all args then
 * present); a partial {@link ActionInput} is written as given and the server fills its defaults.
 */
export function serializeAction(action: Action | ActionInput): Record<string, unknown> {
  const parsed = action;
  const out: Record<string, unknown> = {};
  for (const key of ["id", "timestamp", "source", "message", "cause"] as const) {
    if (parsed[key] !== undefined) out[key] = parsed[key];
  }
  out.action = parsed.action;
  out.args = { ...parsed.args };
  if (parsed.timeout !== undefined) out.timeout = parsed.timeout;
  if (parsed.tool_call_metadata !== undefined) out.tool_call_metadata = parsed.tool_call_metadata;
  if (parsed.llm_metrics !== undefined) out.llm_metrics = parsed.llm_metrics;
  return out;
}

/** Parses a wire observation; malformed ones throw INVALID_ARGUMENT naming the path. */
export function parseObservation(input: unknown, pathPrefix = "observation"): Observation {
  const result = ObservationSchema.safeParse(input);
  if (!result.success) {
    const type = (input as { observation?: unknown } | null)?.observation;
    if (typeof type === "string") {
      // Re-run against the single matching branch for a precise path instead of a union summary.
      const branch = ObservationSchema.options[0].options.find(
        (o) => (o.shape.observation as z.ZodLiteral<string>).value === type,
      );
      if (branch) {
        const r = branch.safeParse(input);
        if (!r.success) fail("observation", r.error, pathPrefix);
      }
    }
    fail("observation", result.error, pathPrefix);
  }
  return result.data;
}

/**
 * Formats an observation in its wire form; `success` only where the observation carries it. It only formats
 * (no validation, no defaults): observations come parsed from the client ({@link parseObservation}).
 */
export function serializeObservation(observation: Observation | ObservationInput): Record<string, unknown> {
  const parsed = observation;
  const out: Record<string, unknown> = {};
  for (const key of ["id", "timestamp", "source", "message", "cause"] as const) {
    if (parsed[key] !== undefined) out[key] = parsed[key];
  }
  out.observation = parsed.observation;
  out.content = parsed.content;
  out.extras = parsed.extras;
  if ("success" in parsed && parsed.success !== undefined) out.success = parsed.success;
  return out;
}

/** Common options of the action builders. */
export interface ActionBuilderOptions {
  /** Hard timeout in ms; sent as seconds (`timeout`). */
  timeoutMs?: number;
  /** The agent's reasoning, echoed back. @default "" */
  thought?: string;
  /** Event id to correlate the observation (`cause`). */
  id?: number;
}

function base(opts: ActionBuilderOptions, message: string) {
  return {
    ...(opts.id !== undefined ? { id: opts.id } : {}),
    message,
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs / 1000 } : {}),
  };
}

/** Options of {@link cmdRun}. */
export interface CmdRunOptions extends ActionBuilderOptions {
  /** Disable the no-change timeout; wait until the command ends or `timeoutMs`. @default false */
  blocking?: boolean;
  /** Send `command` as input (or a key such as `C-c`) to the running process. @default false */
  isInput?: boolean;
  /** Run in a fresh shell in `cwd`, leaving the main shell untouched. @default false */
  isStatic?: boolean;
  /** Working directory for `isStatic` commands. */
  cwd?: string;
  /** Hidden output is not truncated and not shown to the agent. @default false */
  hidden?: boolean;
}

/**
 * Builds a `run` action.
 *
 * @example
 * ```ts
 * await runtime.run(cmdRun("npm test", { timeoutMs: 120_000, blocking: true }));
 * ```
 */
export function cmdRun(command: string, opts: CmdRunOptions = {}): CmdRunAction {
  return parseAction({
    ...base(opts, `Running command: ${command}`),
    action: "run",
    args: {
      command,
      is_input: opts.isInput ?? false,
      thought: opts.thought ?? "",
      blocking: opts.blocking ?? false,
      is_static: opts.isStatic ?? false,
      cwd: opts.cwd ?? null,
      hidden: opts.hidden ?? false,
      confirmation_state: "confirmed",
      security_risk: -1,
    },
  }) as CmdRunAction;
}

/** Builds a `run_ipython` action. */
export function ipythonRun(
  code: string,
  opts: ActionBuilderOptions & { includeExtra?: boolean } = {},
): IPythonRunCellAction {
  return parseAction({
    ...base(opts, `Running Python code interactively: ${code}`),
    action: "run_ipython",
    args: { code, thought: opts.thought ?? "", include_extra: opts.includeExtra ?? true },
  }) as IPythonRunCellAction;
}

/** Builds a `read` action; `start`/`end` are 0-based lines with `end` exclusive (-1: to the end). */
export function fileRead(
  path: string,
  opts: ActionBuilderOptions & {
    start?: number;
    end?: number;
    implSource?: "default" | "oh_aci";
    viewRange?: number[];
  } = {},
): FileReadAction {
  return parseAction({
    ...base(opts, `Reading file: ${path}`),
    action: "read",
    args: {
      path,
      start: opts.start ?? 0,
      end: opts.end ?? -1,
      thought: opts.thought ?? "",
      impl_source: opts.implSource ?? "default",
      view_range: opts.viewRange ?? null,
    },
  }) as FileReadAction;
}

/** Builds a `write` action (whole file, or lines `start..end` of an existing file). */
export function fileWrite(
  path: string,
  content: string,
  opts: ActionBuilderOptions & { start?: number; end?: number } = {},
): FileWriteAction {
  return parseAction({
    ...base(opts, `Writing file: ${path}`),
    action: "write",
    args: { path, content, start: opts.start ?? 0, end: opts.end ?? -1, thought: opts.thought ?? "" },
  }) as FileWriteAction;
}

/** The str_replace_editor commands as typed builder inputs. */
export type EditRequest =
  | { command: "view"; viewRange?: number[] }
  | { command: "create"; fileText: string }
  | { command: "str_replace"; oldStr: string; newStr?: string }
  | { command: "insert"; insertLine: number; newStr: string }
  | { command: "undo_edit" };

/** Builds an `edit` action (str_replace_editor semantics). `view` is sent as an `edit` with command view. */
export function fileEdit(
  path: string,
  request: EditRequest,
  opts: ActionBuilderOptions = {},
): FileEditAction {
  return parseAction({
    ...base(opts, `Editing file: ${path}`),
    action: "edit",
    args: {
      path,
      command: request.command,
      file_text: request.command === "create" ? request.fileText : null,
      old_str: request.command === "str_replace" ? request.oldStr : null,
      new_str:
        request.command === "str_replace" || request.command === "insert" ? (request.newStr ?? "") : null,
      insert_line: request.command === "insert" ? request.insertLine : null,
      thought: opts.thought ?? "",
      impl_source: "oh_aci",
      ...(request.command === "view" && request.viewRange ? { view_range: request.viewRange } : {}),
    },
  }) as FileEditAction;
}

/** Builds a `browse` action. */
export function browseUrl(url: string, opts: ActionBuilderOptions = {}): BrowseUrlAction {
  return parseAction({
    ...base(opts, `Browsing URL: ${url}`),
    action: "browse",
    args: { url },
  }) as BrowseUrlAction;
}

/** Builds a `call_tool_mcp` action (run by the host, never sent to a sandbox). */
export function mcpCall(
  name: string,
  args: Record<string, unknown> = {},
  opts: ActionBuilderOptions = {},
): McpAction {
  return parseAction({
    ...base(opts, `Calling MCP tool: ${name}`),
    action: "call_tool_mcp",
    args: { name, arguments: args },
  }) as McpAction;
}
