import { chmodSync, realpathSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readProc } from "../src/shell/process-tree.js";
import { act, run, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;

/** Polls `done` every 20 ms; fails naming `what` when it is still false after 30 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after 30 s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.stop();
});

describe("run: completed commands", () => {
  it("returns output, exit code and metadata in OpenHands' shape", async () => {
    const obs = await run(t, "echo hi", { timeout: 10 });
    expect(obs.observation).toBe("run");
    expect(obs.content).toBe("hi");
    expect(obs.success).toBe(true);
    expect(obs.message).toBe("Command `echo hi` executed with exit code 0.");
    expect(obs.extras.command).toBe("echo hi");
    expect(obs.extras.hidden).toBe(false);
    const m = obs.extras.metadata;
    expect(m.exit_code).toBe(0);
    expect(m.pid).toBe(-1);
    expect(m.hostname).toBe(hostname());
    expect(typeof m.username).toBe("string");
    expect(m.working_dir).toBe(realpathSync(t.workDir));
    expect(typeof m.py_interpreter_path).toBe("string");
    expect(m.prefix).toBe("");
    expect(m.suffix).toBe("\n[The command completed with exit code 0.]");
  });

  it("reports non-zero exit codes and mixes stderr into the content", async () => {
    const obs = await run(t, "echo out; echo err >&2; (exit 3)");
    expect(obs.extras.metadata.exit_code).toBe(3);
    expect(obs.success).toBe(false);
    expect(obs.content).toBe("out\nerr");
    expect(obs.extras.metadata.suffix).toBe("\n[The command completed with exit code 3.]");
  });

  it("keeps cwd, variables, functions and aliases between commands", async () => {
    await run(t, "mkdir -p sub/dir && cd sub/dir");
    await run(t, "export AR_VAR=persisted");
    await run(t, "ar_fn() { echo fn-$1; }");
    await run(t, "alias ar_alias='echo from-alias'");
    const pwd = await run(t, "pwd");
    expect(pwd.content).toBe(`${realpathSync(t.workDir)}/sub/dir`);
    expect(pwd.extras.metadata.working_dir).toBe(pwd.content);
    expect((await run(t, "echo $AR_VAR")).content).toBe("persisted");
    expect((await run(t, "ar_fn ok")).content).toBe("fn-ok");
    expect((await run(t, "ar_alias")).content).toBe("from-alias");
    await run(t, `cd ${t.workDir}`);
  });

  it("starts bash without rc files and without the session key in its environment", async () => {
    const obs = await run(
      t,
      'echo "[$SESSION_API_KEY]" ; shopt -q login_shell && echo login || echo nologin',
    );
    expect(obs.content).toBe("[]\nnologin");
  });

  it("runs heredocs and multi-line compound commands as one command", async () => {
    const heredoc = await run(t, "cat <<'EOF'\nline one\n$HOME stays literal\nEOF");
    expect(heredoc.content).toBe("line one\n$HOME stays literal");
    const loop = await run(t, "for i in 1 2 3; do\n  echo n$i\ndone");
    expect(loop.content).toBe("n1\nn2\nn3");
  });

  it("refuses several top-level commands with an ErrorObservation listing them", async () => {
    const obs = await act(t, { action: "run", args: { command: "echo a\necho b" } });
    expect(obs.observation).toBe("error");
    expect("success" in obs).toBe(false);
    expect(obs.content).toContain("ERROR: Cannot execute multiple commands at once.");
    expect(obs.content).toContain("(1) echo a\n(2) echo b");
  });

  it("does not hold the command open for background jobs, and reports $! as pid", async () => {
    const started = Date.now();
    const obs = await run(t, "sleep 30 & echo started", { timeout: 10 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(obs.content).toContain("started");
    expect(obs.extras.metadata.pid).toBeGreaterThan(0);
    const bg = obs.extras.metadata.pid;
    expect(readProc(bg)).toBeDefined();
    await run(t, `kill ${bg}; wait ${bg} 2>/dev/null; true`);
  });

  it("reports finished background jobs in a later command, like a terminal", async () => {
    const started = await run(t, "sleep 0.2 &");
    // OpenHands (an interactive shell on a terminal) answers `[1] <pid>`.
    expect(started.content).toBe(`[1] ${started.extras.metadata.pid}`);
    // Once bash has reaped the job (its pid is gone from /proc) it has a finished job to report; a fixed wait
    // was not always long enough for `sleep 0.2` on a loaded machine.
    await until(() => readProc(started.extras.metadata.pid) === undefined, "bash to reap `sleep 0.2`");
    const later = await run(t, "echo later");
    expect(later.content).toMatch(/^later\n\[1\]\+\s+Done\s+sleep 0\.2$/);
  });

  it("passes quotes, backslashes, control characters and UTF-8 through unchanged; a tab shows as a terminal shows it", async () => {
    const obs = await run(t, `printf '%s|' "héllo 🎉" 'it'"'"'s' "back\\slash" $'tab\there' '$HOME-not'`);
    // On a terminal (and in OpenHands' tmux pane) a tab moves to the next multiple of 8 columns.
    expect(obs.content).toBe("héllo 🎉|it's|back\\slash|tab     here|$HOME-not|");
  });

  it("runs commands that start with a dash as commands (not options of eval)", async () => {
    const obs = await run(t, "-n hi");
    expect(obs.extras.metadata.exit_code).toBe(127);
    expect(obs.content).toContain("-n: command not found");
  });

  it("syntax errors come back as bash's message with exit code 2", async () => {
    const obs = await run(t, "echo 'unterminated");
    expect(obs.extras.metadata.exit_code).toBe(2);
    expect(obs.content).toContain("unexpected EOF");
    expect((await run(t, "echo still-fine")).content).toBe("still-fine");
  });

  it("keeps the first and last 15,000 characters of long output around the marker", async () => {
    const obs = await run(t, "seq 1 20000", { timeout: 30 });
    expect(obs.content.length).toBe(30_000 + "\n[... Observation truncated due to length ...]\n".length);
    expect(obs.content.startsWith("1\n2\n3\n")).toBe(true);
    expect(obs.content).toContain("\n[... Observation truncated due to length ...]\n");
    expect(obs.content.endsWith("19999\n20000")).toBe(true);
  });

  it("hidden commands are not truncated", async () => {
    const obs = await run(t, "seq 1 20000", { timeout: 30, hidden: true });
    expect(obs.extras.hidden).toBe(true);
    expect(obs.content.split("\n")).toHaveLength(20_000);
  });

  it("stays bounded in memory for 100 MB of output and returns head and tail", async () => {
    const before = process.memoryUsage().rss;
    const obs = await run(t, "head -c 100000000 /dev/zero | tr '\\0' 'x'; echo; echo END", {
      timeout: 120,
      blocking: true,
    });
    const grownMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    expect(obs.extras.metadata.exit_code).toBe(0);
    expect(obs.content.startsWith("xxxx")).toBe(true);
    expect(obs.content.endsWith("END")).toBe(true);
    expect(obs.content.length).toBeLessThan(31_000);
    expect(grownMiB).toBeLessThan(80);
    // 31 s on a loaded machine: the test may take as long as the command's own 120 s timeout.
  }, 150_000);
});

describe("run: timeouts and interaction", () => {
  it("hard timeout: exit -1, null metadata, the process keeps running; '' returns only new output", async () => {
    const obs = await run(t, "echo first; sleep 2.5; echo second", { timeout: 1, blocking: true });
    expect(obs.extras.metadata).toEqual({
      exit_code: -1,
      pid: -1,
      username: null,
      hostname: null,
      working_dir: null,
      py_interpreter_path: null,
      prefix: "",
      suffix: expect.stringContaining("\n[The command timed out after 1.0 seconds. You may wait longer"),
    });
    expect(obs.success).toBe(false);
    expect(obs.content).toBe("first");
    const rest = await run(t, "", { timeout: 10, blocking: true });
    expect(rest.content).toBe("second");
    expect(rest.extras.metadata.exit_code).toBe(0);
    // Completed in this observation: OpenHands sends no "[Below is the output of the previous command.]".
    expect(rest.extras.metadata.prefix).toBe("");
    expect(rest.extras.command).toBe("");
  });

  it("prints an integer hard timeout as a float (3 -> 3.0)", async () => {
    const obs = await run(t, "sleep 1.5", { timeout: 1, blocking: true });
    expect(obs.extras.metadata.suffix).toContain("timed out after 1.0 seconds.");
    await run(t, "", { timeout: 10, blocking: true });
  });

  it("no-change timeout fires after silence unless blocking; a new command is refused meanwhile", async () => {
    const obs = await run(t, "echo tick; sleep 3; echo tock", { timeout: 30 });
    expect(obs.content).toBe("tick");
    expect(obs.extras.metadata.exit_code).toBe(-1);
    expect(obs.extras.metadata.suffix).toContain(
      "\n[The command has no new output after 1 seconds. You may wait longer",
    );
    const refused = await run(t, "echo new");
    expect(refused.extras.metadata.exit_code).toBe(-1);
    expect(refused.extras.metadata.prefix).toBe("[Below is the output of the previous command.]\n");
    expect(refused.extras.metadata.suffix).toContain(
      '\n[Your command "echo new" is NOT executed. The previous command is still running',
    );
    const done = await run(t, "", { timeout: 10, blocking: true });
    expect(done.content).toBe("tock");
    expect(done.extras.metadata.exit_code).toBe(0);
  });

  it("the no-change timer restarts on output", async () => {
    const obs = await run(t, "for i in 1 2 3 4; do echo t$i; sleep 0.4; done; echo end", { timeout: 30 });
    expect(obs.extras.metadata.exit_code).toBe(0);
    expect(obs.content).toBe("t1\nt2\nt3\nt4\nend");
  });

  it("is_input sends a line to the running program", async () => {
    const first = await run(t, "read -r line; echo got-$line", { timeout: 0.5, blocking: true });
    expect(first.extras.metadata.exit_code).toBe(-1);
    const second = await run(t, "hello", { is_input: true, timeout: 5 });
    expect(second.content).toBe("got-hello");
    expect(second.extras.metadata.exit_code).toBe(0);
  });

  it("C-c interrupts the foreground job with exit code 130 and keeps the shell", async () => {
    await run(t, "export KEEP=yes");
    const obs = await run(t, "sleep 30", { timeout: 0.5, blocking: true });
    expect(obs.extras.metadata.exit_code).toBe(-1);
    const ctrl = await run(t, "C-c", { is_input: true, timeout: 5 });
    expect(ctrl.extras.metadata.exit_code).toBe(130);
    expect(ctrl.content).toBe("^C");
    expect(ctrl.extras.metadata.suffix).toBe(
      "\n[The command completed with exit code 130. CTRL+C was sent.]",
    );
    expect((await run(t, "echo $KEEP")).content).toBe("yes");
  });

  it("C-c breaks a loop of the shell itself (no child process)", async () => {
    await run(t, "while true; do :; done", { timeout: 0.5, blocking: true });
    const ctrl = await run(t, "C-c", { is_input: true, timeout: 5 });
    expect(ctrl.extras.metadata.exit_code).toBe(130);
    expect((await run(t, "echo alive")).content).toBe("alive");
  });

  it("C-c stops a loop of commands, not just one iteration", async () => {
    await run(t, "for i in 1 2 3; do sleep 10; done; echo not-reached", { timeout: 0.5, blocking: true });
    const ctrl = await run(t, "C-c", { is_input: true, timeout: 5 });
    expect(ctrl.extras.metadata.exit_code).toBe(130);
    expect(ctrl.content).not.toContain("not-reached");
  });

  it("C-z stops the job (148, 'Stopped') and it can be resumed", async () => {
    await run(t, "sleep 20", { timeout: 0.5, blocking: true });
    const z = await run(t, "C-z", { is_input: true, timeout: 5 });
    expect(z.extras.metadata.exit_code).toBe(148);
    expect(z.content).toMatch(/^\^Z\n\[1\]\+\s+Stopped\s+sleep 20$/);
    const jobs = await run(t, "jobs");
    expect(jobs.content).toMatch(/Stopped\s+sleep 20/);
    await run(t, "kill -9 %1; wait %1 2>/dev/null; true");
  });

  it("C-d closes the running program's stdin", async () => {
    // The job the previous test killed may be reaped late on a loaded machine, and bash reports it ("Killed
    // sleep 20") with the next command's output: let that report land here, not in the checks below.
    await run(t, "wait 2>/dev/null; sleep 0.1; true");
    await run(t, "cat", { timeout: 0.5, blocking: true });
    const line = await run(t, "typed", { is_input: true, timeout: 10 });
    expect(line.content).toBe("typed");
    expect(line.extras.metadata.exit_code).toBe(-1);
    const eof = await run(t, "C-d", { is_input: true, timeout: 5 });
    expect(eof.extras.metadata.exit_code).toBe(0);
    expect(eof.content).toBe("");
    // The next command gets a fresh stdin.
    await run(t, "read -r x; echo again-$x", { timeout: 0.5, blocking: true });
    expect((await run(t, "ok", { is_input: true, timeout: 5 })).content).toBe("again-ok");
  });

  it("with nothing running, '' and is_input are error outputs with command ''", async () => {
    const logs = await run(t, "");
    expect(logs.content).toBe("ERROR: No previous running command to retrieve logs from.");
    expect(logs.extras.command).toBe("");
    expect(logs.extras.metadata.exit_code).toBe(-1);
    expect(logs.success).toBe(false);
    const input = await run(t, "C-c", { is_input: true });
    expect(input.content).toBe("ERROR: No previous running command to interact with.");
    expect(input.extras.command).toBe("");
  });
});

describe("run: is_static and shell death", () => {
  it("is_static runs in a fresh shell in cwd and leaves the main shell alone", async () => {
    await run(t, "export ONLY_MAIN=1");
    const obs = await run(t, 'pwd; echo "[$ONLY_MAIN]"', { is_static: true, cwd: "/tmp" });
    expect(obs.content).toBe(`${realpathSync("/tmp")}\n[]`);
    expect(obs.extras.metadata.working_dir).toBe(realpathSync("/tmp"));
    expect((await run(t, "pwd")).content).toBe(realpathSync(t.workDir));
  });

  it("is_static with a missing cwd is an error observation", async () => {
    const obs = await act(t, {
      action: "run",
      args: { command: "pwd", is_static: true, cwd: "/nonexistent/dir" },
    });
    expect(obs.observation).toBe("error");
    expect(obs.content).toContain("/nonexistent/dir");
  });

  it("after `exit` the next command gets a fresh shell and is told so", async () => {
    await run(t, "export GONE=1; cd /tmp");
    const bye = await run(t, "exit 7");
    expect(bye.extras.metadata.exit_code).toBe(7);
    expect(bye.extras.metadata.suffix).toContain("The shell exited");
    const next = await run(t, 'echo "[$GONE]"; pwd');
    expect(next.content).toBe(`[]\n${realpathSync(t.workDir)}`);
    expect(next.extras.metadata.prefix).toContain("[The previous shell exited with code 7;");
    expect((await run(t, "echo plain")).extras.metadata.prefix).toBe("");
  });
});

describe.skipIf(process.getuid?.() !== 0)("as root with --user-id", () => {
  it("runs shells and Python as that user and gives new files to it", async () => {
    const u = await startTestServer({ userId: 65534, username: "sandbox" });
    try {
      chmodSync(u.root, 0o755);
      chmodSync(join(u.root, "home"), 0o777);
      const id = await run(u, "id -u");
      expect(id.content).toBe("65534");
      expect(id.extras.metadata.username).toBe("sandbox");
      await act(u, { action: "write", args: { path: "owned.txt", content: "x" } });
      expect(statSync(join(u.workDir, "owned.txt")).uid).toBe(65534);
      const py = await act(u, {
        action: "run_ipython",
        args: { code: "import os; os.getuid()", include_extra: false },
      });
      expect(py.content).toBe("65534");
    } finally {
      await u.stop();
    }
  });
});
