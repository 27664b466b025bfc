import { randomBytes } from "node:crypto";
import {
  type CmdOutputObservation,
  type ErrorObservation,
  type Runtime,
  RuntimeError,
} from "@agent-runtime/runtime-core";
import type { ComposedPlugins } from "../compose.js";
import { formatUsd, sessionCost } from "./cost.js";
import { formatDuration, Progress, type ProgressStream } from "./progress.js";
import { startSandboxStep } from "./start-sandbox.js";

/** The demo project: a tiny ES module with a bug, and node:test tests that catch it. */
export const DEMO_PROJECT = {
  "package.json": `${JSON.stringify({ name: "stats-demo", version: "1.0.0", type: "module", scripts: { test: "node --test test/stats.test.js" } }, null, 2)}\n`,
  "src/stats.js": `/** The arithmetic mean of a non-empty list. */
export function mean(values) {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** The median of a non-empty list. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 0 ? (sorted[mid] + sorted[mid + 1]) / 2 : sorted[mid];
}
`,
  "test/stats.test.js": `import assert from "node:assert/strict";
import { test } from "node:test";
import { mean, median } from "../src/stats.js";

test("mean of 1..4 is 2.5", () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
});

test("median of an odd-length list", () => {
  assert.equal(median([3, 1, 2]), 2);
});

test("median of an even-length list", () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
});
`,
} as const;

/** The fix the demo's "agent" applies with a str_replace edit. */
export const DEMO_FIX = {
  path: "src/stats.js",
  oldStr: "(sorted[mid] + sorted[mid + 1]) / 2",
  newStr: "(sorted[mid - 1] + sorted[mid]) / 2",
};

/** The test command the demo runs in the sandbox. */
export const DEMO_TEST_COMMAND = "node --test --test-reporter=spec test/stats.test.js";

/** One timed step of the demo. */
export interface DemoStep {
  name: string;
  durationMs: number;
}

/** What the demo did. */
export interface DemoReport {
  backend: string;
  /** Isolation of local sandboxes (`bubblewrap` or `none`), when the backend says. */
  isolation: string | undefined;
  steps: DemoStep[];
  totalMs: number;
  /** Test counts of the first and second runs. */
  before: TestSummary;
  after: TestSummary;
  /** Cost charged for the sandbox, in USD (undefined when no cost plugin is configured). */
  costUsd: number | undefined;
}

/** Counts parsed from node:test's summary lines. */
export interface TestSummary {
  exitCode: number;
  tests: number;
  pass: number;
  fail: number;
  /** Names of failing tests. */
  failed: string[];
}

/** Strips ANSI escape sequences. */
export function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape sequences is the point
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
}

/** Parses node:test's spec-reporter summary (`ℹ tests 3`, `ℹ fail 1`, `✖ <name>`). */
export function parseTestOutput(output: string, exitCode: number): TestSummary {
  const text = stripAnsi(output);
  const count = (key: string) =>
    Number(new RegExp(`^\\s*[ℹ#]\\s*${key}\\s+(\\d+)`, "m").exec(text)?.[1] ?? Number.NaN);
  const failed = new Set<string>();
  for (const m of text.matchAll(/^\s*✖\s+(.+?)\s+\([\d.]+m?s\)\s*$/gm)) {
    const name = m[1]!.trim();
    if (!/^failing tests/i.test(name) && !name.endsWith(".js")) failed.add(name);
  }
  return { exitCode, tests: count("tests"), pass: count("pass"), fail: count("fail"), failed: [...failed] };
}

function exitCodeOf(obs: CmdOutputObservation | ErrorObservation): number {
  if (obs.observation !== "run")
    throw new RuntimeError("INTERNAL", `The test command failed to run: ${obs.content}`);
  return obs.extras.metadata.exit_code;
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  out: ProgressStream;
  /** Draw spinners. @default out.isTTY */
  tty?: boolean;
  /** Session id of the sandbox. @default a random `demo-...` id */
  sessionId?: string;
  /** Aborting stops the sandbox; the demo then fails with CANCELLED. */
  signal?: AbortSignal;
}

/**
 * The demo: start a sandbox, write a small project into it, run its tests (one fails), fix the bug with an
 * `edit` str_replace, run them again (all pass), stop the sandbox, and print the timings and the cost.
 * Throws a RuntimeError naming the step that went wrong.
 */
export async function runDemo(plugins: ComposedPlugins, options: DemoOptions): Promise<DemoReport> {
  const progress = new Progress(options.out, options.tty === undefined ? {} : { tty: options.tty });
  const provider = plugins.provider;
  const isolation =
    typeof (provider as { isolation?: unknown }).isolation === "string"
      ? (provider as unknown as { isolation: string }).isolation
      : undefined;
  const sessionId = options.sessionId ?? `demo-${randomBytes(4).toString("hex")}`;
  const steps: DemoStep[] = [];
  const t0 = performance.now();
  progress.line(
    `agent-host demo: a sandbox on the ${provider.backend} runtime${isolation ? ` (isolation: ${isolation})` : ""}`,
  );
  progress.line();

  let runtime: Runtime | undefined;
  try {
    const started = await startSandboxStep(
      progress,
      provider,
      sessionId,
      options.signal,
      (rt) => {
        runtime = rt;
      },
      plugins.logger,
    );
    steps.push({ name: "start the sandbox", durationMs: started.durationMs });
    const rt = started.value;

    const written = await progress.step("write the project (src/stats.js, test/stats.test.js)", async () => {
      const pwd = await rt.runCommand("pwd", { hidden: true });
      const workspace = pwd.content.trim().split("\n").pop()!.trim();
      for (const [path, content] of Object.entries(DEMO_PROJECT))
        await rt.writeFile(`${workspace}/${path}`, content);
      return workspace;
    });
    steps.push({ name: "write the project", durationMs: written.durationMs });
    const workspace = written.value;

    const runTests = async (label: string) => {
      const r = await progress.step(label, async () => {
        const obs = await rt.runCommand(
          `cd ${JSON.stringify(workspace)} && NO_COLOR=1 ${DEMO_TEST_COMMAND}`,
          { blocking: true, timeoutMs: 120_000 },
        );
        return parseTestOutput(obs.content, exitCodeOf(obs));
      });
      return r;
    };

    const first = await runTests(`run the tests: ${DEMO_TEST_COMMAND}`);
    const before = first.value;
    steps.push({ name: `run the tests (${before.fail} failed)`, durationMs: first.durationMs });
    progress.line(
      `    tests ${before.tests}, pass ${before.pass}, fail ${before.fail} (exit code ${before.exitCode})`,
    );
    for (const name of before.failed) progress.line(`    failing: ${name}`);
    if (before.exitCode === 0 || !(before.fail >= 1)) {
      throw new RuntimeError(
        "INTERNAL",
        `The first test run should fail one test (the bug), but it gave exit code ${before.exitCode} with ${before.fail} failures.`,
      );
    }

    const fixed = await progress.step(`fix the bug: edit ${DEMO_FIX.path} (str_replace)`, async () => {
      await rt.edit(`${workspace}/${DEMO_FIX.path}`, {
        command: "str_replace",
        oldStr: DEMO_FIX.oldStr,
        newStr: DEMO_FIX.newStr,
      });
    });
    steps.push({ name: "fix the bug (edit)", durationMs: fixed.durationMs });
    progress.line(`    - ${DEMO_FIX.oldStr}`);
    progress.line(`    + ${DEMO_FIX.newStr}`);

    const second = await runTests("run the tests again");
    const after = second.value;
    steps.push({ name: `run the tests again (${after.pass} passed)`, durationMs: second.durationMs });
    progress.line(
      `    tests ${after.tests}, pass ${after.pass}, fail ${after.fail} (exit code ${after.exitCode})`,
    );
    if (after.exitCode !== 0 || after.fail !== 0) {
      throw new RuntimeError(
        "INTERNAL",
        `The tests still fail after the fix (exit code ${after.exitCode}, ${after.fail} failures).`,
      );
    }

    const stopped = await progress.step("stop the sandbox", async () => {
      await rt.close();
    });
    runtime = undefined;
    steps.push({ name: "stop the sandbox", durationMs: stopped.durationMs });

    const totalMs = performance.now() - t0;
    const costUsd = plugins.cost ? sessionCost(plugins, sessionId) : undefined;
    const report: DemoReport = {
      backend: provider.backend,
      isolation,
      steps,
      totalMs,
      before,
      after,
      costUsd,
    };
    printSummary(progress, report, plugins);
    return report;
  } finally {
    await runtime?.close().catch(() => undefined);
  }
}

function printSummary(progress: Progress, report: DemoReport, plugins: ComposedPlugins): void {
  const width = Math.max(...report.steps.map((s) => s.name.length), 5) + 2;
  progress.line();
  progress.line("What happened:");
  for (const s of report.steps)
    progress.line(`  ${s.name.padEnd(width)}${formatDuration(s.durationMs).padStart(9)}`);
  progress.line(`  ${"total".padEnd(width)}${formatDuration(report.totalMs).padStart(9)}`);
  progress.line();
  if (report.costUsd === undefined) progress.line("Cost: not tracked (cost.enabled is false).");
  else {
    const note =
      report.costUsd === 0 && (report.backend === "local" || report.backend === "docker")
        ? ` (${report.backend} sandboxes are free unless you set prices for the ${report.backend} provider)`
        : "";
    progress.line(`Cost: ${formatUsd(report.costUsd)} for this sandbox, from ${plugins.costPlugin}${note}.`);
  }
  progress.line(`Result: the bug is fixed; ${report.after.pass} of ${report.after.tests} tests pass.`);
}
