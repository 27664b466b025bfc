// Each test names the behaviour of OpenHands' own action server (bash in a tmux pane) that it matches.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readProc } from "../src/shell/process-tree.js";
import { which } from "../src/shell/which.js";
import { call, run, startTestServer, type TestServer } from "./helpers.js";

const PREFIX = "[Below is the output of the previous command.]\n";
const has = (name: string) => which(name, process.env.PATH ?? "", "/") !== "";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.stop();
});

/**
 * Sends `command`, expecting it to still run at the no-change timeout (1 s in tests). When `shows` is given
 * and a loaded machine made the program slower than that, waits on with `""` until its text appeared; the
 * first observation is returned with the text of all of them.
 */
async function startWaiting(command: string, shows?: string) {
  const first = await run(t, command, { timeout: 30 });
  let obs = first;
  let text = first.content;
  for (let i = 0; shows && !text.includes(shows) && obs.extras.metadata.exit_code === -1 && i < 20; i++) {
    obs = await run(t, "", { timeout: 30 });
    text = [text, obs.content].filter(Boolean).join("\n");
  }
  expect(obs.extras.metadata.exit_code).toBe(-1);
  expect(obs.extras.metadata.suffix).toContain("has no new output after 1 seconds");
  return { ...first, content: text };
}

/** Runs a command that completes (no no-change timeout: a loaded machine must not make it look stuck). */
const done = (command: string) => run(t, command, { blocking: true, timeout: 60 });

describe("a terminal, as programs see it", () => {
  it("server_info reports the pty (OpenHands: always a tmux pane)", async () => {
    const info = await call(t, "GET", "/server_info");
    expect((info.json as { terminal: string }).terminal).toBe("pty");
  });

  it("stdin, stdout and stderr are a terminal of 1000 columns and 50 rows with TERM=xterm-256color", async () => {
    const obs = await done('test -t 0 && test -t 1 && test -t 2 && echo "tty $TERM $(stty size)"');
    expect(obs.content).toBe("tty xterm-256color 50 1000");
  });

  it.skipIf(!has("python3"))("a program that checks isatty() sees a terminal", async () => {
    const obs = await done(`python3 -c 'import sys; print(sys.stdout.isatty(), sys.stdin.isatty())'`);
    expect(obs.content).toBe("True True");
  });

  it("the command line itself is not echoed; output has no colours or cursor codes", async () => {
    const obs = await done("printf '\\033[31mred\\033[0m \\033[1mbold\\033[0m\\n'; ls --color=always -d /");
    expect(obs.content).toBe("red bold\n/");
  });

  it("a \\r progress bar collapses to its last state", async () => {
    const obs = await run(
      t,
      `for i in 1 2 3 4 5; do printf '\\rprogress %3d%%' $((i*20)); sleep 0.02; done; printf '\\r\\033[Kdone\\n'`,
    );
    expect(obs.content).toBe("done");
    const bar = await run(
      t,
      `for i in 1 2 3 4 5; do printf '\\r[%-5s] %d' "$(printf '#%.0s' $(seq $i))" $i; done; echo`,
    );
    expect(bar.content).toBe("[#####] 5");
  });

  it("answers a program's cursor-position query, as a terminal does", async () => {
    // Echo goes off before the query, as programs that ask do: the terminal may answer before `read` starts, and
    // a reply that arrives while echo is on is echoed, by a real terminal as by this one.
    const obs = await done(
      `stty -echo; printf 'ab\\033[6n'; IFS= read -r -d R pos; stty echo; echo; echo "at \${pos#*[}"`,
    );
    expect(obs.content).toBe("ab\nat 1;3");
  });
});

describe("interactive programs", () => {
  it("read -p: `name?` at the no-change timeout, then `hello world` with exit code 0 after the input", async () => {
    const first = await startWaiting('read -p "name? " n; echo "hello $n"', "name?");
    expect(first.content).toBe("name?");
    expect(first.extras.metadata.prefix).toBe("");
    const second = await run(t, "world", { is_input: true, timeout: 60, blocking: true });
    expect(second.content).toBe("hello world");
    expect(second.extras.metadata.exit_code).toBe(0);
    expect(second.extras.metadata.prefix).toBe("");
  });

  it.skipIf(!has("python3"))(
    "python3 -q: `>>>`, print(6*7) gives `42\\n>>>`, C-d ends it with empty content, exit 0, CTRL+D was sent",
    async () => {
      const repl = await startWaiting("python3 -q", ">>>");
      expect(repl.content).toBe(">>>");
      const answer = await run(t, "print(6*7)", { is_input: true, timeout: 30 });
      expect(answer.content).toBe("42\n>>>");
      expect(answer.extras.metadata.exit_code).toBe(-1);
      expect(answer.extras.metadata.prefix).toBe(PREFIX);
      const eof = await run(t, "C-d", { is_input: true, timeout: 60, blocking: true });
      expect(eof.content).toBe("");
      expect(eof.extras.metadata.exit_code).toBe(0);
      expect(eof.extras.metadata.suffix).toBe("\n[The command completed with exit code 0. CTRL+D was sent.]");
      expect(eof.extras.metadata.prefix).toBe("");
    },
  );

  it("`sleep 1 &` answers `[1] <pid>` (job control of an interactive shell)", async () => {
    const obs = await done("sleep 1 &");
    const pid = obs.extras.metadata.pid;
    expect(pid).toBeGreaterThan(0);
    expect(obs.content).toBe(`[1] ${pid}`);
    await done("wait; true");
  });

  it("C-z stops the job (`^Z`, `[1]+  Stopped`, exit 148), then `kill %1` ends it", async () => {
    await done("wait 2>/dev/null; true");
    await startWaiting("sleep 20");
    const z = await run(t, "C-z", { is_input: true, timeout: 60, blocking: true });
    expect(z.extras.metadata.exit_code).toBe(148);
    expect(z.content).toBe("^Z\n[1]+  Stopped                 sleep 20");
    expect(z.extras.metadata.prefix).toBe("");
    const pid = Number((await done("jobs -p %1")).content);
    expect(readProc(pid)?.state).toBe("T");
    const kill = await done("kill %1");
    expect(kill.extras.metadata.exit_code).toBe(0);
    // Dead (a zombie bash has yet to reap, or reaped) before the next command: on a loaded machine the job
    // could take longer to die than the next command's 0.2 s.
    const deadline = Date.now() + 30_000;
    for (let p = readProc(pid); p && p.state !== "Z" && Date.now() < deadline; p = readProc(pid))
      await new Promise((r) => setTimeout(r, 20));
    // The job's end shows now or with the next command, as a terminal reports it before its next prompt.
    const later = await done("sleep 0.2; jobs");
    expect(`${kill.content}\n${later.content}`).toMatch(/\[1\]\+\s+Terminated\s+sleep 20/);
    const gone = readProc(pid);
    expect(gone === undefined || gone.state === "Z").toBe(true);
  });

  it("C-c interrupts with `^C` and exit 130; C-\\ quits with exit 131", async () => {
    await startWaiting("sleep 30");
    const c = await run(t, "C-c", { is_input: true, timeout: 60, blocking: true });
    expect(c.content).toBe("^C");
    expect(c.extras.metadata.exit_code).toBe(130);
    expect(c.extras.metadata.suffix).toBe("\n[The command completed with exit code 130. CTRL+C was sent.]");
    await startWaiting("sleep 30");
    const q = await run(t, "C-\\", { is_input: true, timeout: 60, blocking: true });
    expect(q.extras.metadata.exit_code).toBe(131);
    expect(q.content.startsWith("^\\")).toBe(true);
  });

  it("any other C-<letter> is typed as its control character (C-a is byte 01)", async () => {
    await startWaiting("IFS= read -r line; printf '%s' \"$line\" | od -An -tx1");
    const key = await run(t, "C-a", { is_input: true, timeout: 0.3, blocking: true });
    expect(key.extras.metadata.exit_code).toBe(-1);
    const done = await run(t, "z", { is_input: true, timeout: 60, blocking: true });
    expect(done.content.trim()).toMatch(/01 7a$/);
    expect(done.extras.metadata.exit_code).toBe(0);
  });

  it.skipIf(!has("less"))("less on a file shows its screen (alternate screen), `q` leaves it", async () => {
    const file = join(t.workDir, "pager.txt");
    writeFileSync(file, Array.from({ length: 80 }, (_, i) => `pager line ${i + 1}`).join("\n"));
    const screen = await startWaiting(`less ${file}`, "pager line 1");
    const lines = screen.content.split("\n");
    expect(lines[0]).toBe("pager line 1");
    expect(lines).toContain("pager line 49");
    expect(lines).not.toContain("pager line 50");
    expect(lines.at(-1)).toMatch(/^:|pager\.txt/);
    const quit = await run(t, "q", { is_input: true, timeout: 60, blocking: true });
    expect(quit.extras.metadata.exit_code).toBe(0);
    expect(quit.content).toBe("");
    expect(quit.extras.metadata.prefix).toBe("");
  });

  it.skipIf(!has("vi"))("vi on a file shows its screen, `:q` leaves it", async () => {
    const file = join(t.workDir, "edit.txt");
    writeFileSync(file, "first line\nsecond line\n");
    const screen = await startWaiting(`vi ${file}`, "second line");
    expect(screen.content.split("\n").slice(0, 2)).toEqual(["first line", "second line"]);
    expect(screen.content).toContain("~");
    const quit = await run(t, ":q", { is_input: true, timeout: 60, blocking: true });
    expect(quit.extras.metadata.exit_code).toBe(0);
    expect(quit.content).toBe("");
  });

  it("input typed while nothing reads it does not reach the next command", async () => {
    await startWaiting("sleep 1.5");
    await run(t, "stray input", { is_input: true, timeout: 60, blocking: true });
    const next = await done('read -r -t 0.3 x; echo "[$x]"');
    expect(next.content).toBe("[]");
  });
});

describe("the prefix `[Below is the output of the previous command.]`", () => {
  it("is set while the command an earlier action started still runs: a refused command, input leaving it running", async () => {
    await startWaiting("cat");
    const refused = await run(t, "echo new");
    expect(refused.extras.metadata.prefix).toBe(PREFIX);
    expect(refused.extras.metadata.suffix).toContain('Your command "echo new" is NOT executed');
    const typed = await run(t, "some input", { is_input: true, timeout: 1.5 });
    expect(typed.content).toBe("some input");
    expect(typed.extras.metadata.exit_code).toBe(-1);
    expect(typed.extras.metadata.prefix).toBe(PREFIX);
    const waited = await run(t, "", { timeout: 1.5 });
    expect(waited.extras.metadata.exit_code).toBe(-1);
    expect(waited.extras.metadata.prefix).toBe(PREFIX);
    const eof = await run(t, "C-d", { is_input: true, timeout: 60, blocking: true });
    expect(eof.extras.metadata.prefix).toBe("");
  });

  it("is empty once the command completes in this observation: an empty command that waits it out", async () => {
    await startWaiting("sleep 1.3; echo finished");
    const rest = await run(t, "", { timeout: 60, blocking: true });
    expect(rest.content).toBe("finished");
    expect(rest.extras.metadata.exit_code).toBe(0);
    expect(rest.extras.metadata.prefix).toBe("");
  });

  it("is empty after C-c, and empty on the first observation of a command", async () => {
    const first = await startWaiting("sleep 30");
    expect(first.extras.metadata.prefix).toBe("");
    const c = await run(t, "C-c", { is_input: true, timeout: 60, blocking: true });
    expect(c.extras.metadata.prefix).toBe("");
  });
});

describe("without a pty source", () => {
  it("falls back to pipes and says so in server_info (no `script` on PATH)", async () => {
    const bin = mkdtempSync(join(tmpdir(), "ar-nopty-"));
    for (const name of ["bash", "sleep"])
      symlinkSync(which(name, process.env.PATH ?? "", "/"), join(bin, name));
    const p = await startTestServer({
      shellEnv: { PATH: bin, HOME: tmpdir(), LANG: "C.UTF-8" },
    });
    try {
      expect(((await call(p, "GET", "/server_info")).json as { terminal: string }).terminal).toBe("pipe");
      const obs = await run(p, "test -t 1 && echo tty || echo pipe");
      expect(obs.content).toBe("pipe");
      expect((await run(p, "sleep 0.1 &")).content).toMatch(/^\[1\] \d+$/);
    } finally {
      await p.stop();
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe("a `script` that cannot give a pty", () => {
  it("falls back to pipes at start (e.g. BusyBox's script, which has no -e)", async () => {
    const bin = mkdtempSync(join(tmpdir(), "ar-badpty-"));
    for (const name of ["bash", "mkfifo"])
      symlinkSync(which(name, process.env.PATH ?? "", "/"), join(bin, name));
    writeFileSync(join(bin, "script"), "#!/bin/sh\necho 'script: unrecognized option: e' >&2\nexit 1\n", {
      mode: 0o755,
    });
    const p = await startTestServer({ shellEnv: { PATH: bin, HOME: tmpdir(), LANG: "C.UTF-8" } });
    try {
      expect(((await call(p, "GET", "/server_info")).json as { terminal: string }).terminal).toBe("pipe");
      expect((await run(p, "echo still works")).content).toBe("still works");
    } finally {
      await p.stop();
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

it("util-linux script is what provides the pty here (CI needs it)", () => {
  expect(spawnSync("script", ["--version"], { encoding: "utf8" }).stdout).toContain("util-linux");
});
