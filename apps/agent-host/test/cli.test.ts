import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tempDir } from "./helpers.js";

const root = join(import.meta.dirname, "..");
const cli = join(root, "dist", "cli.js");
const dir = tempDir();
/** The demo runs with its real default (auto: bubblewrap when it works) unless this is set. */
const isolation = process.env.AGENT_HOST_TEST_ISOLATION;
/** Scripts run without bubblewrap unless told otherwise (the demo covers the default). */
const scriptIsolation = isolation ?? "none";

beforeAll(() => {
  if (!existsSync(cli))
    throw new Error(
      `${cli} is missing: run \`pnpm build\` in apps/agent-host first (turbo's test task does).`,
    );
});
afterAll(() => dir.cleanup());

/** Runs the built CLI as a real process; `onStdout` may act on output while it runs. */
function runCli(
  args: string[],
  options: {
    env?: Record<string, string>;
    onStdout?: (text: string, child: ReturnType<typeof spawn>) => void;
    timeoutMs?: number;
  } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: dir.path,
      env: { ...process.env, HOME: dir.path, SHLVL: "1", NO_COLOR: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`agent-host ${args.join(" ")} timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      options.onStdout?.(stdout, child);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const isolationArgs = isolation ? ["--isolation", isolation] : [];

describe("agent-host CLI (built, as a process)", () => {
  test("demo: tests fail, an edit fixes the bug, tests pass; timings and cost printed; exit 0", async () => {
    const r = await runCli(["demo", ...isolationArgs], { timeoutMs: 90_000 });
    expect(r.stderr).not.toMatch(/error \[/);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(
      /agent-host demo: a sandbox on the local runtime \(isolation: (bubblewrap|none)\)/,
    );
    expect(r.stdout).toContain("ok  start the sandbox");
    expect(r.stdout).toMatch(/tests 3, pass 2, fail 1 \(exit code 1\)/);
    expect(r.stdout).toContain("failing: median of an even-length list");
    expect(r.stdout).toContain("+ (sorted[mid - 1] + sorted[mid]) / 2");
    expect(r.stdout).toMatch(/tests 3, pass 3, fail 0 \(exit code 0\)/);
    expect(r.stdout).toMatch(/total\s+[\d.]+ (ms|s)/);
    expect(r.stdout).toMatch(/Cost: \$0\.00 for this sandbox, from cost-guard/);
    expect(r.stdout).toContain("Result: the bug is fixed; 3 of 3 tests pass.");
    // Not a terminal: plain lines, no spinner control characters.
    expect(r.stdout).not.toContain("\x1b[");
  });

  test("run: the example script passes, printing observations and a cost summary", async () => {
    const args = ["run", join(root, "examples", "fix-a-bug.yaml")];
    const r = await runCli([
      ...args,
      "--config",
      writeConfig({ runtime: { options: { isolation: scriptIsolation } } }),
    ]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain("agent-host run: fix a bug in greet.js (9 steps, local runtime)");
    expect(r.stdout).toContain("ok  [5/9] the test fails before the fix");
    expect(r.stdout).toMatch(/\| .*greet\.js/);
    expect(r.stdout).toContain("PASSED: 9 of 9 steps passed");
    expect(r.stdout).toMatch(/Cost: \$0\.00 \(cost-guard, 1 sandbox\)/);
  });

  test("run: a failed expectation stops the script and exits 1, naming what was expected", async () => {
    const script = join(dir.path, "failing.yaml");
    writeFileSync(
      script,
      ["steps:", "  - run: echo one; exit 4", "  - run: echo never", "    expect: { contains: never }"].join(
        "\n",
      ),
    );
    const args = [
      "run",
      script,
      "--config",
      writeConfig({ runtime: { options: { isolation: scriptIsolation } } }),
    ];
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAIL [1/2] run: echo one; exit 4");
    expect(r.stdout).toContain("expectation failed: expected exit code 0, got 4");
    expect(r.stdout).toContain("FAILED: 0 of 2 steps passed, 1 failed, 1 skipped");
  });

  test("run: an invalid script exits 2 with every problem's path", async () => {
    const script = join(dir.path, "invalid.yaml");
    writeFileSync(
      script,
      [
        "steps:",
        "  - run: ls",
        "    read: { path: x }",
        "  - action: { action: fly }",
        "  - run: ls",
        "    expect: { matches: '(' }",
      ].join("\n"),
    );
    const r = await runCli(["run", script]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("INVALID_ARGUMENT");
    expect(r.stderr).toContain(
      "steps[0]: a step has exactly one of run, write, read, edit, action (found run, read)",
    );
    expect(r.stderr).toContain("steps[2].expect.matches: not a valid regular expression");
  });

  test("serve: refuses a non-loopback address without a token; usage errors exit 2", async () => {
    const r = await runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--db", ":memory:"], {
      env: { AGENT_HOST_TOKEN: "" },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Refusing to serve on 0.0.0.0 without a token");
    const bad = await runCli(["serve", "--port", "http"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--port: expected a port number");
    const unknown = await runCli(["dance"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "dance"');
  });

  test("serve: answers on 127.0.0.1 and stops cleanly on SIGTERM", async () => {
    let url: string | undefined;
    const r = await runCli(["serve", "--port", "0", "--db", join(dir.path, "serve.db")], {
      env: { AGENT_HOST_TOKEN: "" },
      onStdout: (text, child) => {
        const m = /serving on (http:\/\/\S+)/.exec(text);
        if (m && url === undefined) {
          url = m[1]!;
          fetch(`${url}/health`)
            .then((res) => res.json())
            .then((body) => {
              expect(body).toMatchObject({ ok: true, backend: "local" });
              child.kill("SIGTERM");
            })
            .catch(() => child.kill("SIGKILL"));
        }
      },
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(r.stdout).toContain("SIGTERM: shutting down");
    expect(r.code).toBe(0);
  });
});

let configs = 0;
function writeConfig(config: unknown): string {
  const file = join(dir.path, `config-${configs++}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}
