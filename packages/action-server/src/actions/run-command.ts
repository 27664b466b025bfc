import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import {
  type CmdOutputMetadata,
  type CmdRunAction,
  completedAfterKeySuffix,
  completedSuffix,
  hardTimeoutSuffix,
  MULTIPLE_COMMANDS_ERROR,
  NO_PREVIOUS_COMMAND_INPUT,
  NO_PREVIOUS_COMMAND_LOGS,
  noChangeTimeoutSuffix,
  notExecutedSuffix,
  PREVIOUS_OUTPUT_PREFIX,
} from "@agent-runtime/runtime-core";
import { BashSession, type BashSessionOptions, KEY_PATTERN, type WaitResult } from "../shell/bash-session.js";
import { splitBashCommands } from "../shell/split-commands.js";
import { findTerminal, type TerminalKind } from "../shell/terminal.js";
import { which } from "../shell/which.js";
import { cmdOutput, emptyMetadata, errorObservation, type WireObservation } from "./observations.js";

/** What the runner needs to start shells and fill metadata. */
export interface CommandRunnerOptions {
  shell: Omit<BashSessionOptions, "cwd">;
  workingDir: string;
  username: string;
  hostname: string;
  noChangeTimeoutMs: number;
}

/**
 * Runs `run` actions with OpenHands' shell semantics on one persistent {@link BashSession}: timeouts that
 * leave the process running, continuation with `""`, input and keys with `is_input`, refusal of a new
 * command while one runs, `is_static` in a fresh shell, and a fresh shell after the old one exited.
 */
export class CommandRunner {
  readonly #options: CommandRunnerOptions;
  #session: BashSession | undefined;
  /** `which python` per PATH and cwd, re-checked at most once a second (it costs ~20 syscalls). */
  #pythonCache = new Map<string, { at: number; path: string }>();
  /** Set when the shell exited: the next command starts a new one and says so. */
  #restartNote: string | undefined;
  /** Receives the live output of the action being run (the streaming form of execute_action). */
  #outputListener: ((text: string) => void) | undefined;
  /** Ends the current session's live-output subscription (subscribed only while a listener waits). */
  #unsubscribe: (() => void) | undefined;
  /** `script` when shells get a pseudo-terminal (probed once at start), undefined for pipes. */
  #scriptPath: string | undefined;
  #terminalNote = "";

  constructor(options: CommandRunnerOptions) {
    this.#options = options;
  }

  /**
   * Starts the main shell (once, at server start) on a pseudo-terminal when the image can give one, else (or
   * when that start fails: no pty device, a `script` that cannot run it) on pipes.
   */
  async start(): Promise<void> {
    const support = findTerminal(this.#options.shell.env.PATH ?? "", this.#options.workingDir);
    if (support.kind === "pty") {
      this.#scriptPath = support.scriptPath;
      try {
        this.#session = await this.#newSession(this.#options.workingDir);
        return;
      } catch (err) {
        this.#scriptPath = undefined;
        this.#terminalNote = `${support.scriptPath} could not start bash on a pseudo-terminal: ${err instanceof Error ? err.message : String(err)}`;
      }
    } else this.#terminalNote = support.reason;
    this.#session = await this.#newSession(this.#options.workingDir);
  }

  /** `pty` when shells run on a pseudo-terminal, `pipe` when none could be opened (see {@link pipeReason}). */
  get terminal(): TerminalKind {
    return this.#scriptPath ? "pty" : "pipe";
  }

  /** Why shells run on pipes ("" on a pty). */
  get pipeReason(): string {
    return this.#terminalNote;
  }

  /** The main shell's working directory (the initial one while no live shell exists). */
  get cwd(): string {
    const s = this.#session;
    return s && !s.exited ? s.cwd : this.#options.workingDir;
  }

  /** Pids of live shells (for diagnostics and tests). */
  get shellPid(): number | undefined {
    return this.#session?.pid;
  }

  /**
   * Runs one `run` action. `onOutput` receives the command's new output as it appears, while this action
   * waits (the executor runs one action at a time, so there is one listener at most).
   */
  async run(action: CmdRunAction, onOutput?: (text: string) => void): Promise<WireObservation> {
    this.#outputListener = onOutput;
    try {
      return await this.#run(action);
    } finally {
      this.#outputListener = undefined;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }
  }

  async #run(action: CmdRunAction): Promise<WireObservation> {
    const args = action.args;
    const timeoutSeconds = action.timeout ?? undefined;
    const wait = {
      ...(timeoutSeconds !== undefined ? { hardTimeoutMs: timeoutSeconds * 1000 } : {}),
      ...(args.blocking ? {} : { noChangeTimeoutMs: this.#options.noChangeTimeoutMs }),
      untruncated: args.hidden,
    };
    const command = args.command;
    if (!args.is_input && command.trim() !== "") {
      const commands = splitBashCommands(command);
      if (commands.length > 1) {
        const list = commands.map((c, i) => `(${i + 1}) ${c}`).join("\n");
        return errorObservation(`${MULTIPLE_COMMANDS_ERROR}\nProvided commands:\n${list}`);
      }
    }
    if (args.is_static) return this.#runStatic(action, wait);

    const session = await this.#liveSession();
    this.#watch(session);
    const note = this.#takeRestartNote();
    if (args.is_input) {
      if (!session.running) return this.#errorOutput(NO_PREVIOUS_COMMAND_INPUT, note);
      if (KEY_PATTERN.test(command)) session.sendKey(command);
      else if (!session.sendLine(command)) {
        return this.#observe(command, await session.wait(wait), {
          prefix: note,
          continuation: true,
          hidden: args.hidden,
          timeoutSeconds,
          inputNote: session.hasInput
            ? "\n[The input was not delivered: the running program is not reading its input.]"
            : "\n[The input was not delivered: this server could not create a stdin FIFO (is `mkfifo` installed?).]",
        });
      }
      const key = KEY_PATTERN.test(command) ? command : undefined;
      return this.#observe(command, await session.wait(wait), {
        prefix: note,
        continuation: true,
        hidden: args.hidden,
        timeoutSeconds,
        ...(key ? { key } : {}),
      });
    }
    if (command.trim() === "") {
      if (!session.hasPendingCommand) return this.#errorOutput(NO_PREVIOUS_COMMAND_LOGS, note);
      return this.#observe(command, await session.wait(wait), {
        prefix: note,
        continuation: true,
        hidden: args.hidden,
        timeoutSeconds,
      });
    }
    if (session.running) {
      const output = (await session.takeOutput(args.hidden)).trimEnd();
      return cmdOutput(
        command,
        output,
        emptyMetadata(note + PREVIOUS_OUTPUT_PREFIX, notExecutedSuffix(command)),
        args.hidden,
      );
    }
    session.startCommand(command);
    return this.#observe(command, await session.wait(wait), {
      prefix: note,
      continuation: false,
      hidden: args.hidden,
      timeoutSeconds,
    });
  }

  /** Kills every shell process group. */
  close(): void {
    this.#session?.close();
    this.#session = undefined;
  }

  async #runStatic(
    action: CmdRunAction,
    wait: { hardTimeoutMs?: number; noChangeTimeoutMs?: number; untruncated: boolean },
  ) {
    const args = action.args;
    const cwd = args.cwd ? resolve(this.cwd, args.cwd) : this.cwd;
    if (!existsSync(cwd) || !statSync(cwd).isDirectory()) {
      return errorObservation(
        `The working directory ${cwd} of this is_static command does not exist or is not a directory.`,
      );
    }
    const session = await this.#newSession(cwd);
    this.#watch(session);
    try {
      session.startCommand(args.command);
      return this.#observe(
        args.command,
        await session.wait(wait),
        { prefix: "", continuation: false, hidden: args.hidden, timeoutSeconds: action.timeout ?? undefined },
        session,
      );
    } finally {
      session.close();
    }
  }

  #observe(
    command: string,
    result: WaitResult,
    ctx: {
      /** A note that goes first (the shell was restarted). */
      prefix: string;
      /** The command was started by an earlier action (the prefix rule below). */
      continuation: boolean;
      hidden: boolean;
      timeoutSeconds: number | undefined;
      key?: string;
      inputNote?: string;
    },
    session: BashSession | undefined = this.#session,
  ): WireObservation {
    const content = result.output.trimEnd();
    // OpenHands says "[Below is the output of the previous command.]" only while the command an earlier action
    // started is still running when the observation returns; once it completes here, the prefix is empty.
    const stillRunning = result.status === "no_change_timeout" || result.status === "hard_timeout";
    const prefix = ctx.prefix + (ctx.continuation && stillRunning ? PREVIOUS_OUTPUT_PREFIX : "");
    let metadata: CmdOutputMetadata;
    switch (result.status) {
      case "completed": {
        const m = result.metadata;
        const exitCode = m?.exitCode ?? 0;
        const cwd = m?.workingDir ?? session?.cwd ?? this.#options.workingDir;
        metadata = {
          exit_code: exitCode,
          pid: m?.pid ?? -1,
          username: this.#options.username,
          hostname: this.#options.hostname,
          working_dir: cwd,
          py_interpreter_path: this.#python(m?.pathEnv ?? session?.pathEnv ?? "", cwd),
          prefix,
          suffix: ctx.key ? completedAfterKeySuffix(exitCode, ctx.key) : completedSuffix(exitCode),
        };
        break;
      }
      case "no_change_timeout":
        metadata = emptyMetadata(prefix, noChangeTimeoutSuffix(this.#options.noChangeTimeoutMs / 1000));
        break;
      case "hard_timeout":
        metadata = emptyMetadata(prefix, hardTimeoutSuffix(ctx.timeoutSeconds ?? 0));
        break;
      case "exited": {
        const code = result.shellExitCode ?? -1;
        this.#restartNote = `[The previous shell exited with code ${code}; this command runs in a new shell started in ${this.#options.workingDir}: variables, functions, aliases and the working directory were reset.]\n`;
        metadata = {
          ...emptyMetadata(prefix),
          exit_code: code,
          username: this.#options.username,
          hostname: this.#options.hostname,
          suffix: `\n[The command completed with exit code ${code}. The shell exited; the next command starts a new shell.]`,
        };
        break;
      }
    }
    if (ctx.inputNote) metadata.suffix = ctx.inputNote + metadata.suffix;
    return cmdOutput(command, content, metadata, ctx.hidden);
  }

  #python(pathEnv: string, cwd: string): string {
    const key = `${pathEnv}\0${cwd}`;
    const now = Date.now();
    const hit = this.#pythonCache.get(key);
    if (hit && now - hit.at < 1000) return hit.path;
    const path = which("python", pathEnv, cwd);
    if (this.#pythonCache.size > 64) this.#pythonCache.clear();
    this.#pythonCache.set(key, { at: now, path });
    return path;
  }

  #errorOutput(message: string, note: string): WireObservation {
    return cmdOutput("", message, emptyMetadata(note));
  }

  async #liveSession(): Promise<BashSession> {
    if (this.#session && !this.#session.exited) return this.#session;
    if (this.#session) {
      const code = this.#session.exitCode ?? -1;
      this.#session.close();
      this.#restartNote ??= `[The previous shell exited with code ${code}; this command runs in a new shell started in ${this.#options.workingDir}: variables, functions, aliases and the working directory were reset.]\n`;
    }
    this.#session = await this.#newSession(this.#options.workingDir);
    return this.#session;
  }

  #takeRestartNote(): string {
    const note = this.#restartNote ?? "";
    this.#restartNote = undefined;
    return note;
  }

  #newSession(cwd: string): Promise<BashSession> {
    return BashSession.start({
      ...this.#options.shell,
      cwd,
      ...(this.#scriptPath ? { scriptPath: this.#scriptPath } : {}),
    });
  }

  /** Passes `session`'s live output to the waiting listener, if any, until this action returns. */
  #watch(session: BashSession): void {
    const listener = this.#outputListener;
    if (!listener) return;
    this.#unsubscribe?.();
    this.#unsubscribe = session.onOutput(listener);
  }
}
