import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  type Action,
  cmdRun,
  fileEdit,
  fileRead,
  fileWrite,
  formatZodIssues,
  InvalidArgumentError,
  type Observation,
  parseAction,
  type Runtime,
  RuntimeError,
} from "@agent-runtime/runtime-core";
import { z } from "zod";
import type { ComposedPlugins } from "../compose.js";
import { parseStructuredText } from "../config.js";
import { costSummaryLines } from "./cost.js";
import { FollowPrinter } from "./follow.js";
import { formatDuration, Progress, type ProgressStream } from "./progress.js";
import { startSandboxStep } from "./start-sandbox.js";

const oneOrMany = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

/** What a step's observation must satisfy. */
export const ExpectSchema = z.strictObject({
  /** Exit code of a `run` step, or `any`. @default 0 for `run` steps */
  exitCode: z.union([z.number().int(), z.literal("any")]).optional(),
  /** Text(s) the observation's content must contain. */
  contains: oneOrMany.optional(),
  /** Text(s) it must not contain. */
  notContains: oneOrMany.optional(),
  /** A regular expression (JavaScript syntax, multiline) the content must match. */
  matches: z
    .string()
    .refine((s) => {
      try {
        new RegExp(s, "m");
        return true;
      } catch {
        return false;
      }
    }, "not a valid regular expression")
    .optional(),
  /** Observation type expected (`run`, `read`, `write`, `edit`, `error`...). @default anything but `error` for file steps */
  observation: z.string().optional(),
});

const RunSpec = z.union([
  z.string().min(1),
  z.strictObject({
    /** The shell command. */
    command: z.string().min(1),
    /** Run in a fresh shell in this directory. */
    cwd: z.string().optional(),
  }),
]);

/** One step: exactly one of `run`, `write`, `read`, `edit`, `action`. */
export const StepSchema = z
  .strictObject({
    /** Shown in progress lines. @default derived from the action */
    name: z.string().optional(),
    /** A shell command (waits until it ends, up to `timeoutMs`). */
    run: RunSpec.optional(),
    /** Write a whole file (relative paths are inside the sandbox's workspace). */
    write: z.strictObject({ path: z.string().min(1), content: z.string() }).optional(),
    /** Read a file. */
    read: z.strictObject({ path: z.string().min(1) }).optional(),
    /** A str_replace edit. */
    edit: z
      .strictObject({ path: z.string().min(1), oldStr: z.string().min(1), newStr: z.string().default("") })
      .optional(),
    /** Any action in OpenHands wire form. */
    action: z.record(z.string(), z.unknown()).optional(),
    /** Hard timeout of the action, in ms. @default 120000 */
    timeoutMs: z.number().int().positive().default(120_000),
    /** What the observation must satisfy. */
    expect: ExpectSchema.optional(),
    /** Keep going when this step fails. @default false */
    continueOnFailure: z.boolean().default(false),
  })
  .superRefine((step, ctx) => {
    const kinds = (["run", "write", "read", "edit", "action"] as const).filter((k) => step[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message:
          kinds.length === 0
            ? "a step needs one of run, write, read, edit, action"
            : `a step has exactly one of run, write, read, edit, action (found ${kinds.join(", ")})`,
      });
    }
  });

/** A scripted agent: a list of steps run in one sandbox. */
export const ScriptSchema = z.strictObject({
  /** Shown in the header. @default the file name */
  name: z.string().optional(),
  /** Free text shown under the name. */
  description: z.string().optional(),
  steps: z.array(StepSchema).min(1, "a script needs at least one step"),
});

/** A script as users write it. */
export type ScriptInput = z.input<typeof ScriptSchema>;
/** A parsed script. */
export type Script = z.output<typeof ScriptSchema>;
/** A parsed step. */
export type ScriptStep = z.output<typeof StepSchema>;

/** Validates a script; every problem reported as `path: message` under the source's name. */
export function parseScript(input: unknown, source = "script"): Script {
  const result = ScriptSchema.safeParse(input);
  if (!result.success) {
    const issues = formatZodIssues(result.error);
    throw new InvalidArgumentError(`Invalid ${source}:\n  ${issues.join("\n  ")}`, issues);
  }
  for (const [i, step] of result.data.steps.entries()) {
    if (step.action) parseAction(step.action, `steps[${i}].action`);
  }
  return result.data;
}

/** Reads and validates a YAML or JSON script file. */
export function loadScript(path: string): Script {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new RuntimeError(
      "NOT_FOUND",
      `Script ${path} cannot be read (${(cause as NodeJS.ErrnoException).code ?? "error"}); check the path.`,
      { cause },
    );
  }
  return parseScript(parseStructuredText(text, path), path);
}

function resolvePath(path: string, workspace: string): string {
  return path.startsWith("/") ? path : `${workspace.replace(/\/$/, "")}/${path}`;
}

/** Builds the action of a step. */
export function stepAction(step: ScriptStep, workspace: string): Action {
  const timeoutMs = step.timeoutMs;
  if (step.run !== undefined) {
    const spec = typeof step.run === "string" ? { command: step.run } : step.run;
    return cmdRun(spec.command, {
      blocking: true,
      timeoutMs,
      ...(spec.cwd ? { isStatic: true, cwd: resolvePath(spec.cwd, workspace) } : {}),
    });
  }
  if (step.write)
    return fileWrite(resolvePath(step.write.path, workspace), step.write.content, { timeoutMs });
  if (step.read) return fileRead(resolvePath(step.read.path, workspace), { timeoutMs });
  if (step.edit) {
    return fileEdit(
      resolvePath(step.edit.path, workspace),
      { command: "str_replace", oldStr: step.edit.oldStr, newStr: step.edit.newStr },
      { timeoutMs },
    );
  }
  return parseAction({ timeout: timeoutMs / 1000, ...step.action });
}

/** A step's default name. */
export function stepName(step: ScriptStep): string {
  if (step.name) return step.name;
  if (step.run !== undefined) return `run: ${typeof step.run === "string" ? step.run : step.run.command}`;
  if (step.write) return `write ${step.write.path}`;
  if (step.read) return `read ${step.read.path}`;
  if (step.edit) return `edit ${step.edit.path}`;
  return `action ${String(step.action?.action)}`;
}

/** Checks an observation against a step's expectations; returns the failures (empty: passed). */
export function checkExpectations(step: ScriptStep, obs: Observation): string[] {
  const failures: string[] = [];
  const expect = step.expect ?? {};
  const content = obs.content;
  if (expect.observation !== undefined) {
    if (obs.observation !== expect.observation)
      failures.push(`expected a ${expect.observation} observation, got ${obs.observation}`);
  } else if (obs.observation === "error") {
    failures.push(`the action failed: ${content.split("\n")[0]}`);
  } else if (obs.observation === "edit" && content.startsWith("ERROR:")) {
    failures.push(`the edit failed: ${content.slice(6).trim().split("\n")[0]}`);
  }
  const wantExit = expect.exitCode ?? (step.run !== undefined ? 0 : "any");
  if (wantExit !== "any") {
    const exit = obs.observation === "run" ? obs.extras.metadata.exit_code : undefined;
    if (exit !== wantExit)
      failures.push(
        `expected exit code ${wantExit}, got ${exit ?? `no exit code (${obs.observation} observation)`}`,
      );
  }
  for (const text of expect.contains ?? [])
    if (!content.includes(text)) failures.push(`output does not contain ${JSON.stringify(text)}`);
  for (const text of expect.notContains ?? [])
    if (content.includes(text)) failures.push(`output contains ${JSON.stringify(text)}`);
  if (expect.matches !== undefined && !new RegExp(expect.matches, "m").test(content))
    failures.push(`output does not match /${expect.matches}/m`);
  return failures;
}

/** What happened to one step. */
export interface StepResult {
  name: string;
  ok: boolean;
  durationMs: number;
  failures: string[];
}

/** What a script run did. */
export interface ScriptReport {
  name: string;
  steps: StepResult[];
  passed: number;
  failed: number;
  /** Steps not run because an earlier one failed. */
  skipped: number;
  totalMs: number;
}

/** Options of {@link runScript}. */
export interface RunScriptOptions {
  out: ProgressStream;
  tty?: boolean;
  /** Print whole observations (default: the first 20 lines). @default false */
  verbose?: boolean;
  /** Shown when the script has no name. */
  source?: string;
  /** Aborting stops the sandbox; the run then fails with CANCELLED. */
  signal?: AbortSignal;
  /**
   * Print each command's output as it comes (live, secrets redacted) instead of once it ended; progress is then
   * plain lines (no spinner). A sandbox server without the streaming form prints at the end as before.
   * @default false
   */
  follow?: boolean;
}

function indent(text: string, maxLines: number | undefined): string[] {
  const lines = text.replace(/\s+$/, "").split("\n");
  const shown = maxLines === undefined ? lines : lines.slice(0, maxLines);
  const out = shown.map((l) => `    | ${l}`);
  if (shown.length < lines.length)
    out.push(`    | ... ${lines.length - shown.length} more lines (--verbose shows all)`);
  return out;
}

/**
 * Runs a scripted agent in one sandbox: each step's action, its observation and its expectations, with
 * progress, then a cost summary. Steps after a failing one are skipped unless it has `continueOnFailure`.
 */
export async function runScript(
  plugins: ComposedPlugins,
  script: Script,
  options: RunScriptOptions,
): Promise<ScriptReport> {
  // A spinner redraws its line: live output below it would be torn, so following uses plain lines.
  const tty = options.follow ? false : options.tty;
  const progress = new Progress(options.out, tty === undefined ? {} : { tty });
  const name = script.name ?? options.source ?? "script";
  const sessionId = `run-${randomBytes(4).toString("hex")}`;
  const t0 = performance.now();
  const results: StepResult[] = [];
  progress.line(
    `agent-host run: ${name} (${script.steps.length} steps, ${plugins.provider.backend} runtime)`,
  );
  if (script.description) progress.line(script.description.trim());
  progress.line();
  let runtime: Runtime | undefined;
  try {
    const started = await startSandboxStep(
      progress,
      plugins.provider,
      sessionId,
      options.signal,
      (rt) => {
        runtime = rt;
      },
      plugins.logger,
    );
    const rt = started.value;
    const workspace = (await rt.runCommand("pwd", { hidden: true })).content.trim().split("\n").pop()!.trim();
    let stop = false;
    for (const [i, step] of script.steps.entries()) {
      if (stop) break;
      const label = `[${i + 1}/${script.steps.length}] ${stepName(step)}`;
      let obs: Observation | undefined;
      let failures: string[] = [];
      let durationMs = 0;
      const follow = options.follow ? new FollowPrinter(options.out) : undefined;
      try {
        const r = await progress.step(label, async () => {
          const o = await rt.run(
            stepAction(step, workspace),
            follow ? { onOutput: (text) => follow.write(text) } : {},
          );
          follow?.end();
          const f = checkExpectations(step, o);
          if (f.length > 0) {
            obs = o;
            failures = f;
            throw new RuntimeError("FAILED_PRECONDITION", f.join("; "));
          }
          return o;
        });
        obs = r.value;
        durationMs = r.durationMs;
      } catch (err) {
        follow?.end();
        if (failures.length === 0) failures = [(err as Error).message];
      }
      // Followed output was shown as it came; the observation would show it again.
      if (obs && obs.content.trim() !== "" && !follow?.printed) {
        for (const line of indent(obs.content, options.verbose || failures.length > 0 ? undefined : 20))
          progress.line(line);
      }
      for (const f of failures) progress.line(`    expectation failed: ${f}`);
      results.push({ name: label, ok: failures.length === 0, durationMs, failures });
      if (failures.length > 0 && !step.continueOnFailure) stop = true;
    }
    await rt.close();
    runtime = undefined;
  } finally {
    await runtime?.close().catch(() => undefined);
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  const report: ScriptReport = {
    name,
    steps: results,
    passed,
    failed,
    skipped: script.steps.length - results.length,
    totalMs: performance.now() - t0,
  };
  progress.line();
  progress.line(
    `${failed === 0 ? "PASSED" : "FAILED"}: ${passed} of ${script.steps.length} steps passed${failed ? `, ${failed} failed` : ""}${report.skipped ? `, ${report.skipped} skipped` : ""} in ${formatDuration(report.totalMs)}.`,
  );
  for (const line of costSummaryLines(plugins, [sessionId])) progress.line(line);
  return report;
}
