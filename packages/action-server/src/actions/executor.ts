import { chownSync } from "node:fs";
import {
  type Action,
  BROWSER_UNSUPPORTED,
  type FileEditAction,
  type FileReadAction,
  type IPythonRunCellAction,
  type Logger,
} from "@agent-runtime/runtime-core";
import { EditorError, FileEditor } from "./editor.js";
import { readFileAction, writeFileAction } from "./file-actions.js";
import {
  editObservation,
  errorObservation,
  ipythonObservation,
  readObservation,
  type WireObservation,
} from "./observations.js";
import { PythonKernel } from "./python-kernel.js";
import { CommandRunner, type CommandRunnerOptions } from "./run-command.js";
import { assertPathText, FileAccessError } from "./safe-fs.js";

/** Everything the executor needs. */
export interface ActionExecutorOptions extends CommandRunnerOptions {
  pythonPath: string;
  env: Record<string, string>;
  /** Owner of new files (set when running as root for another user). */
  owner: { uid: number; gid: number } | undefined;
  logger: Logger;
}

/**
 * Runs actions one at a time, in arrival order (later calls wait for earlier ones), and turns each into an
 * observation. Failures of the sandbox itself (a missing file, a bad edit) are observations, not errors.
 *
 * This is the server's one queue, and it is needed even though each host-side client already sends one action
 * at a time: a server has more than one client (a host that restarted and re-attached while its old client still
 * waits, a second host, a person with the session key), and all of them share one shell (which refuses a second
 * command while one runs), one Python kernel and one working directory. It costs one promise link per action.
 */
export class ActionExecutor {
  readonly #options: ActionExecutorOptions;
  readonly #runner: CommandRunner;
  readonly #editor: FileEditor;
  readonly #python: PythonKernel;
  #tail: Promise<unknown> = Promise.resolve();
  #lastActionAt = Date.now();

  constructor(options: ActionExecutorOptions) {
    this.#options = options;
    this.#runner = new CommandRunner(options);
    this.#editor = new FileEditor(options.workingDir, (path) => this.#chown(path));
    this.#python = new PythonKernel(options.pythonPath, options.env, options.owner);
  }

  /** Starts the main shell. */
  async start(): Promise<void> {
    await this.#runner.start();
    if (this.#runner.terminal === "pipe") {
      this.#options.logger.warn("shells run on pipes, not on a pseudo-terminal: programs see no terminal", {
        reason: this.#runner.pipeReason,
      });
    }
  }

  /** When the last action arrived (ms since epoch); `/server_info` reports idle time from it. */
  get lastActionAt(): number {
    return this.#lastActionAt;
  }

  /** How shells are attached: `pty` or `pipe` (no pseudo-terminal could be opened). */
  get terminal(): "pty" | "pipe" {
    return this.#runner.terminal;
  }

  /** The main shell's pid. */
  get shellPid(): number | undefined {
    return this.#runner.shellPid;
  }

  /**
   * Queues `action` behind the ones already running; resolves with its observation. `onOutput` receives a
   * `run` action's output as it appears (other actions produce none).
   */
  execute(action: Action, options: { onOutput?: (text: string) => void } = {}): Promise<WireObservation> {
    this.#lastActionAt = Date.now();
    const result = this.#tail.then(() => this.#dispatch(action, options.onOutput));
    this.#tail = result.catch(() => undefined);
    return result.finally(() => {
      this.#lastActionAt = Date.now();
    });
  }

  /** Kills the shells and Python. */
  close(): void {
    this.#runner.close();
    this.#python.close();
  }

  async #dispatch(action: Action, onOutput?: (text: string) => void): Promise<WireObservation> {
    const ctx = { cwd: this.#runner.cwd, owner: this.#options.owner };
    try {
      checkPaths(action);
    } catch (err) {
      if (err instanceof FileAccessError) return errorObservation(err.message, err.errorId);
      throw err;
    }
    switch (action.action) {
      case "run":
        return this.#runner.run(action, onOutput);
      case "read":
        return action.args.impl_source === "oh_aci" ? this.#viewForRead(action) : readFileAction(action, ctx);
      case "write":
        return writeFileAction(action, ctx);
      case "edit":
        return this.#edit(action);
      case "run_ipython":
        return this.#ipython(action);
      case "browse":
      case "browse_interactive":
        return errorObservation(BROWSER_UNSUPPORTED);
      case "call_tool_mcp":
        return errorObservation(
          "call_tool_mcp is executed by the host, not inside the sandbox: call the MCP tool from the host runtime instead.",
        );
    }
  }

  async #viewForRead(action: FileReadAction): Promise<WireObservation> {
    try {
      const { output } = await this.#editor.run({
        command: "view",
        path: action.args.path,
        viewRange: action.args.view_range,
      });
      return readObservation(action.args.path, output, "oh_aci");
    } catch (err) {
      if (err instanceof FileAccessError) return errorObservation(err.message, err.errorId);
      return readObservation(action.args.path, `ERROR:\n${editorMessage(err)}`, "oh_aci");
    }
  }

  async #edit(action: FileEditAction): Promise<WireObservation> {
    const a = action.args;
    const fields = { oldContent: a.old_str, newContent: a.new_str };
    if (a.impl_source === "llm_based_edit") {
      return errorObservation(
        "impl_source llm_based_edit is performed by the host (it needs an LLM); send str_replace_editor commands (impl_source oh_aci) to the sandbox.",
      );
    }
    try {
      const viewRange = (a as { view_range?: unknown }).view_range;
      const result = await this.#editor.run({
        command: a.command,
        path: a.path,
        fileText: a.file_text,
        oldStr: a.old_str,
        newStr: a.new_str,
        insertLine: a.insert_line,
        viewRange: Array.isArray(viewRange) ? (viewRange as number[]) : null,
      });
      // OpenHands' server reports prev_exist false for every oh_aci edit (it never sets it).
      return editObservation(a.path, result.output, { ...fields, prevExist: false, diff: result.diff });
    } catch (err) {
      if (err instanceof FileAccessError) return errorObservation(err.message, err.errorId);
      // An editor error changes nothing: OpenHands' diff of two empty texts, "" (not null).
      return editObservation(a.path, `ERROR:\n${editorMessage(err)}`, {
        ...fields,
        prevExist: false,
        diff: "",
      });
    }
  }

  async #ipython(action: IPythonRunCellAction): Promise<WireObservation> {
    const cwd = this.#runner.cwd;
    const state = await this.#python.ensureStarted(cwd);
    if (state === "unavailable") {
      return errorObservation(
        `Python is not available in this sandbox: ${JSON.stringify(this.#options.pythonPath)} could not be started. Install python3 in the image (or set ACTION_SERVER_PYTHON) to use run_ipython, or run Python through a run action.`,
      );
    }
    const timeoutMs = action.timeout ? action.timeout * 1000 : undefined;
    let initOutput = "";
    if (state === "started" && action.args.kernel_init_code.trim()) {
      const init = await this.#python.run(action.args.kernel_init_code, cwd, timeoutMs);
      if (init.status !== "ok") initOutput = `[kernel_init_code failed]\n${init.output.trimEnd()}\n`;
    }
    const result = await this.#python.run(action.args.code, cwd, timeoutMs);
    let content = initOutput + result.output.trimEnd();
    if (result.status === "timeout") {
      content += `\n[Execution timed out after ${action.timeout} seconds; the cell was interrupted.]`;
    } else if (result.status === "died" || result.status === "exit") {
      content += "\n[The Python process exited; its variables are lost and the next cell starts a new one.]";
      this.#python.close();
    }
    if (action.args.include_extra) {
      content += `\n[Jupyter current working directory: ${cwd}]\n[Jupyter Python interpreter: ${this.#python.interpreter}]`;
    }
    return ipythonObservation(action.args.code, content);
  }

  #chown(path: string): void {
    const owner = this.#options.owner;
    if (!owner) return;
    try {
      chownSync(path, owner.uid, owner.gid);
    } catch (err) {
      this.#options.logger.warn("could not give a new file to the sandbox user", {
        path,
        error: String(err),
      });
    }
  }
}

/** Paths the agent sent must be able to name a file: a NUL byte gives INVALID_PATH before anything runs. */
function checkPaths(action: Action): void {
  switch (action.action) {
    case "read":
    case "write":
    case "edit":
      assertPathText(action.args.path);
      return;
    case "run":
      if (action.args.cwd) assertPathText(action.args.cwd, "cwd");
      return;
    default:
      return;
  }
}

function editorMessage(err: unknown): string {
  if (err instanceof EditorError) return err.message;
  const code = (err as { code?: unknown })?.code;
  if (code === "EACCES" || code === "EPERM") return `Permission denied: ${(err as Error).message}`;
  return err instanceof Error ? err.message : String(err);
}
