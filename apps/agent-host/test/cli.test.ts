import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { costGuard } from "@agent-runtime/cost-guard";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HostStore } from "../src/store.js";
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

  test("run --follow: prints each line of a command as it is printed, before the step ends", async () => {
    const script = join(dir.path, "follow.yaml");
    writeFileSync(
      script,
      [
        "steps:",
        "  - run: for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done",
        "    expect: { contains: line5 }",
      ].join("\n"),
    );
    const seen: { text: string; at: number }[] = [];
    const r = await runCli(
      [
        "run",
        script,
        "--follow",
        "--config",
        writeConfig({ runtime: { options: { isolation: scriptIsolation } } }),
      ],
      { onStdout: (text) => seen.push({ text, at: performance.now() }) },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const when = (needle: string) => seen.find((s) => s.text.includes(needle))?.at ?? Number.NaN;
    expect(when("    | line1")).toBeLessThan(when("ok  [1/1]") - 300);
    expect(when("    | line1")).toBeLessThan(when("    | line5"));
    // Shown once, live: the observation is not printed again after the step.
    expect(r.stdout.split("| line3").length).toBe(2);
    expect(r.stdout).toContain("PASSED: 1 of 1 steps passed");
    const misplaced = await runCli(["serve", "--follow"]);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toContain("--follow applies to run only");
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

  test("serve: refuses a non-loopback address with --no-auth; usage errors exit 2", async () => {
    const r = await runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--db", ":memory:", "--no-auth"], {
      env: { AGENT_HOST_TOKEN: "" },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Refusing to serve on 0.0.0.0 without a token");
    const misplaced = await runCli(["demo", "--no-auth"]);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toContain("apply to serve only");
    const bad = await runCli(["serve", "--port", "http"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--port: expected a port number");
    const unknown = await runCli(["dance"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "dance"');
  });

  test("serve: closed by default on 127.0.0.1: token file created (and announced) once, state dir private; stops on SIGTERM", async () => {
    const stateDir = join(dir.path, "serve-state");
    const serveOnce = () => {
      let url: string | undefined;
      const statuses: number[] = [];
      const run = runCli(["serve", "--port", "0", "--state-dir", stateDir], {
        env: { AGENT_HOST_TOKEN: "" },
        onStdout: (text, child) => {
          const m = /serving on (http:\/\/\S+)/.exec(text);
          if (m && url === undefined) {
            url = m[1]!;
            const token = readFileSync(join(stateDir, "token"), "utf8").trim();
            (async () => {
              const health = await fetch(`${url}/health`);
              expect(await health.json()).toMatchObject({ ok: true, backend: "local" });
              statuses.push((await fetch(`${url}/v1/sessions`)).status);
              const authed = await fetch(`${url}/v1/sessions`, {
                headers: { authorization: `Bearer ${token}` },
              });
              statuses.push(authed.status);
              child.kill("SIGTERM");
            })().catch(() => child.kill("SIGKILL"));
          }
        },
      });
      return run.then((r) => ({ ...r, url, statuses }));
    };
    const first = await serveOnce();
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(first.statuses).toEqual([401, 200]);
    expect(first.stdout).toContain(`Created the API token ${join(stateDir, "token")}`);
    expect(first.stdout).toContain(`Authorization: Bearer $(cat ${join(stateDir, "token")})`);
    expect(first.stdout).toContain("SIGTERM: shutting down");
    expect(first.code).toBe(0);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    for (const file of ["token", "agent-host.db", "agent-host.db.costs"])
      expect(statSync(join(stateDir, file)).mode & 0o777, file).toBe(0o600);
    // Nothing in the working directory.
    expect(existsSync(join(dir.path, "agent-host.db"))).toBe(false);
    const second = await serveOnce();
    expect(second.statuses).toEqual([401, 200]);
    expect(second.stdout).not.toContain("Created the API token");
    expect(second.stdout).toContain(`auth bearer token in ${join(stateDir, "token")}`);
    expect(second.code).toBe(0);
  });

  test("serve: kill -9 the host, then the sandbox; the restarted host's DELETE leaves the lease settled", async () => {
    const stateDir = join(dir.path, "crash-state");
    const config = writeConfig({ runtime: { options: { isolation: "none" } } });
    const args = ["serve", "--port", "0", "--state-dir", stateDir, "--config", config];
    const token = () => readFileSync(join(stateDir, "token"), "utf8").trim();
    const call = (url: string, method: string, path: string, body?: unknown) =>
      fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token()}` },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> }));

    let ready: unknown;
    const crashed = await runCli(args, {
      env: { AGENT_HOST_TOKEN: "" },
      onStdout: (text, child) => {
        const m = /serving on (http:\/\/\S+)/.exec(text);
        if (!m || ready !== undefined) return;
        ready = "pending";
        (async () => {
          await call(m[1]!, "POST", "/v1/sessions", { id: "crash" });
          ready = (await call(m[1]!, "GET", "/v1/sessions/crash?waitMs=30000")).body.status;
          child.kill("SIGKILL");
        })().catch(() => child.kill("SIGKILL"));
      },
    });
    expect(crashed.code).toBe(null);
    expect(ready).toBe("ready");
    const store = new HostStore(join(stateDir, "agent-host.db"));
    const handle = store.handleOf("crash")!;
    store.close();
    const leaseId = handle.data.leaseId as string;
    expect(typeof leaseId).toBe("string");
    process.kill(-(handle.data.pid as number), "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    const ledgerPath = join(stateDir, "agent-host.db.costs");
    const before = costGuard({ ledgerPath });
    expect(before.getLease(leaseId)?.status).toBe("active");
    before.close();

    let deleted: Record<string, unknown> | undefined;
    const restarted = await runCli(args, {
      env: { AGENT_HOST_TOKEN: "" },
      onStdout: (text, child) => {
        const m = /serving on (http:\/\/\S+)/.exec(text);
        if (!m || deleted !== undefined) return;
        deleted = {};
        (async () => {
          deleted = (await call(m[1]!, "DELETE", "/v1/sessions/crash")).body;
          child.kill("SIGTERM");
        })().catch(() => child.kill("SIGKILL"));
      },
    });
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(deleted).toMatchObject({ id: "crash", status: "closed" });
    const after = costGuard({ ledgerPath });
    try {
      expect(after.getLease(leaseId)?.status).toBe("settled");
      expect(after.openLeases().map((l) => l.leaseId)).not.toContain(leaseId);
    } finally {
      after.close();
    }
  });
});

let configs = 0;
function writeConfig(config: unknown): string {
  const file = join(dir.path, `config-${configs++}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}
