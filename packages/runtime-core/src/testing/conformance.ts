// Longer than 400 lines on purpose: one conformance suite whose cases share a runtime, fixtures and helpers
// declared at the top; splitting it would scatter what a third-party backend author reads in one place.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile as writeHostFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PluginContext, Redactor, ResolvedSecrets, SecretsResolver } from "../context.js";
import { type ErrorCode, isRuntimeError } from "../errors.js";
import type { LogFields, Logger } from "../logger.js";
import type { CmdOutputObservation, Observation } from "../protocol/observations.js";
import type { Runtime, RuntimeCapabilities, RuntimeHandle, StatusEvent } from "../runtime/types.js";
import { RuntimeStatus } from "../runtime/types.js";
import { readZip } from "../util/zip.js";

/** One log line captured by the kit's logger. */
export interface CapturedLog {
  level: keyof Logger;
  message: string;
  fields?: LogFields;
}

/** What the kit passes to `create`. */
export interface ConformanceCreateInput {
  /** A fresh session id per runtime. */
  sessionId: string;
  /** The plugin context to hand to the runtime: a capturing logger and a secrets resolver. */
  context: PluginContext;
  /** The no-change timeout the kit wants the sandbox's server to use, in seconds. */
  noChangeTimeoutSeconds: number;
}

/** Options of {@link runRuntimeConformance}. */
export interface ConformanceOptions {
  /** Suite name shown by vitest. */
  name: string;
  /** What the backend supports; lacking capabilities make their tests skip. */
  capabilities: RuntimeCapabilities;
  /** Creates a (not yet connected) runtime. */
  create(input: ConformanceCreateInput): Runtime | Promise<Runtime>;
  /** Re-attaches to a handle (required when `capabilities.attach`). */
  attach?(handle: RuntimeHandle, input: { context: PluginContext }): Runtime | Promise<Runtime>;
  /**
   * Whether the backend honours `noChangeTimeoutSeconds` from the create input. When false, the no-change
   * timeout test is skipped. @default true
   */
  configurableNoChangeTimeout?: boolean;
  /** Per-test timeout in ms. @default 60000 */
  testTimeoutMs?: number;
}

/** The secret values the kit injects, in shapes that break naive redaction. */
const SECRETS: Record<string, string> = {
  CONFORMANCE_TOKEN: "ct-9f8e7d6c5b4a39281706f5e4",
  CONFORMANCE_REGEX: "p@$$.w*rd+(x)?[y]{2}|z^",
};

/** A secret that exists only inside a secret file (never in the environment). */
const FILE_SECRET = "cf-file-only-7c1d9e2b4a6f8053";

/** The secret files the kit injects: `~/` paths, a nested directory, mode 0600. */
const SECRET_FILES: Record<string, { content: string; mode: number }> = {
  "~/.config/ar-conformance/credentials": {
    content: `# written by the conformance kit\nfile_secret = ${FILE_SECRET}\n`,
    mode: 0o600,
  },
};

function simpleRedactor(values: readonly string[]): Redactor {
  const forms = values.flatMap((v) => [
    v,
    Buffer.from(v).toString("base64"),
    encodeURIComponent(v),
    JSON.stringify(v).slice(1, -1),
  ]);
  const uniq = [...new Set(forms)].filter((f) => f.length >= 6).sort((a, b) => b.length - a.length);
  const redact = (text: string) => uniq.reduce((t, f) => t.split(f).join("[redacted]"), text);
  const deep = <T>(value: T): T => {
    if (typeof value === "string") return redact(value) as T;
    if (Array.isArray(value)) return value.map(deep) as T;
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v)])) as T;
    }
    return value;
  };
  return { redact, redactDeep: deep, isEmpty: uniq.length === 0 };
}

/**
 * Builds the kit's plugin context: a logger that captures every line, and a secrets resolver for the
 * kit's secret corpus (with a simple redactor). Exported for backends' own extra tests.
 */
export function conformanceContext(): {
  context: PluginContext;
  logs: CapturedLog[];
  /** The environment secrets, name -> value. */
  secrets: Record<string, string>;
  /** The secret files (path as given -> content and mode) and the secret only they hold. */
  files: { entries: Record<string, { content: string; mode: number }>; secret: string };
} {
  const logs: CapturedLog[] = [];
  const capture =
    (level: keyof Logger) =>
    (message: string, fields?: LogFields): void => {
      logs.push({ level, message, ...(fields ? { fields } : {}) });
    };
  const logger: Logger = {
    debug: capture("debug"),
    info: capture("info"),
    warn: capture("warn"),
    error: capture("error"),
  };
  const redactor = simpleRedactor([...Object.values(SECRETS), FILE_SECRET]);
  const env = { ...SECRETS };
  const files = { ...SECRET_FILES };
  const resolved: ResolvedSecrets = {
    names: Object.keys(env),
    redactor,
    get env() {
      return env;
    },
    get files() {
      return files;
    },
  };
  Object.defineProperty(resolved, "toJSON", {
    value: () => ({ names: Object.keys(env), files: Object.keys(files) }),
    enumerable: false,
  });
  const secrets: SecretsResolver = { resolve: async () => resolved };
  return {
    context: { logger, redactor: simpleRedactor([]), secrets },
    logs,
    secrets: SECRETS,
    files: { entries: SECRET_FILES, secret: FILE_SECRET },
  };
}

function isRun(obs: Observation): obs is CmdOutputObservation {
  return obs.observation === "run";
}

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a RuntimeError with code ${code}`).toBeDefined();
  expect(isRuntimeError(caught), String(caught)).toBe(true);
  expect((caught as { code: string }).code, String(caught)).toBe(code);
}

/**
 * Registers the runtime conformance suite with vitest: connect and readiness; commands, exit codes,
 * cwd/env persistence, both timeouts, interrupt, input; files (read, write, edit, list, upload, download);
 * bad input and its errors; secrets absent from logs and observations; close, handle and attach.
 */
export function runRuntimeConformance(options: ConformanceOptions): void {
  const caps = options.capabilities;
  const timeout = options.testTimeoutMs ?? 60_000;
  const noChange = 1;
  let counter = 0;
  const sessionId = () => `conformance-${process.pid}-${Date.now().toString(36)}-${counter++}`;

  describe(`runtime conformance: ${options.name}`, () => {
    const kit = conformanceContext();
    // Unique per run: on backends whose /tmp is the host's, runs must not see each other's files.
    const base = `/tmp/ar-conformance-${process.pid}-${Date.now().toString(36)}`;
    let runtime: Runtime;
    const events: StatusEvent[] = [];
    let hostDir: string;

    beforeAll(async () => {
      hostDir = await mkdtemp(join(tmpdir(), "ar-conformance-"));
      runtime = await options.create({
        sessionId: sessionId(),
        context: kit.context,
        noChangeTimeoutSeconds: noChange,
      });
      runtime.onStatus((e) => events.push(e));
      await runtime.connect();
    }, timeout * 2);

    afterAll(async () => {
      if (runtime?.status === RuntimeStatus.READY)
        await runtime.runCommand(`rm -rf ${base}`).catch(() => undefined);
      await runtime?.close();
      if (hostDir) await rm(hostDir, { recursive: true, force: true });
    }, timeout);

    describe("connect and readiness", () => {
      it("reports status events ending in READY", () => {
        expect(runtime.status).toBe(RuntimeStatus.READY);
        const statuses = events.map((e) => e.status);
        expect(statuses).toContain(RuntimeStatus.READY);
        expect(statuses.indexOf(RuntimeStatus.STARTING_RUNTIME)).toBeLessThan(
          statuses.indexOf(RuntimeStatus.READY),
        );
        expect(runtime.capabilities).toEqual(caps);
      });

      it(
        "secret files are in place, with their content and mode, before the first action",
        async () => {
          // The first action of this runtime: the files were written while provisioning, before READY.
          const [path, file] = Object.entries(kit.files.entries)[0]!;
          const sandboxPath = path.replace(/^~\//, "$HOME/");
          const sum = createHash("sha256").update(file.content).digest("hex");
          const obs = await runtime.runCommand(
            `stat -c %a "${sandboxPath}" && sha256sum "${sandboxPath}" && ls -ld "$(dirname "${sandboxPath}")"`,
          );
          expect(isRun(obs) && obs.extras.metadata.exit_code, obs.content).toBe(0);
          const [mode, hash] = obs.content.trim().split("\n");
          expect(mode?.trim()).toBe(file.mode.toString(8));
          expect(hash?.split(" ")[0]).toBe(sum);
        },
        timeout,
      );

      it("connect() again is a no-op", async () => {
        await runtime.connect();
        expect(runtime.status).toBe(RuntimeStatus.READY);
      });
    });

    describe("commands", () => {
      it(
        "runs a command and returns its output and exit code",
        async () => {
          const obs = await runtime.runCommand("echo hello-conformance");
          expect(isRun(obs) && obs.content.trim()).toBe("hello-conformance");
          expect(isRun(obs) && obs.extras.metadata.exit_code).toBe(0);
          expect(isRun(obs) && obs.success).toBe(true);
        },
        timeout,
      );

      it(
        "reports non-zero exit codes",
        async () => {
          const obs = await runtime.runCommand("bash -c 'exit 3'");
          expect(isRun(obs) && obs.extras.metadata.exit_code).toBe(3);
          expect(isRun(obs) && obs.success).toBe(false);
          expect(isRun(obs) && obs.extras.metadata.suffix).toContain("exit code 3");
        },
        timeout,
      );

      it.skipIf(!caps.persistentShell)(
        "keeps cwd, env and functions between commands",
        async () => {
          await runtime.runCommand(`mkdir -p ${base}/cwd && cd ${base}/cwd`);
          await runtime.runCommand("export AR_CONF_VAR=persisted");
          await runtime.runCommand("ar_conf_fn() { echo fn-$1; }");
          const pwd = await runtime.runCommand("pwd");
          expect(pwd.content.trim()).toBe(`${base}/cwd`);
          expect(isRun(pwd) && pwd.extras.metadata.working_dir).toBe(`${base}/cwd`);
          expect((await runtime.runCommand("echo $AR_CONF_VAR")).content.trim()).toBe("persisted");
          expect((await runtime.runCommand("ar_conf_fn ok")).content.trim()).toBe("fn-ok");
          await runtime.runCommand("cd -");
        },
        timeout,
      );

      it(
        "hard timeout returns exit code -1 while the command keeps running; C-c interrupts it",
        async () => {
          const obs = await runtime.runCommand("sleep 30", { timeoutMs: 1000, blocking: true });
          expect(isRun(obs) && obs.extras.metadata.exit_code).toBe(-1);
          expect(isRun(obs) && obs.extras.metadata.suffix).toContain("timed out after 1");
          if (caps.stdin) {
            const busy = await runtime.runCommand("echo new");
            expect(isRun(busy) && busy.extras.metadata.suffix).toContain(
              'Your command "echo new" is NOT executed',
            );
            const ctrl = await runtime.runCommand("C-c", { isInput: true, timeoutMs: 5000 });
            expect(isRun(ctrl) && ctrl.extras.metadata.exit_code).toBe(130);
          }
          const after = await runtime.runCommand("echo after-interrupt", { timeoutMs: 10_000 });
          expect(after.content).toContain("after-interrupt");
        },
        timeout,
      );

      it.skipIf(options.configurableNoChangeTimeout === false)(
        "no-change timeout returns exit code -1 when output stops",
        async () => {
          const obs = await runtime.runCommand("echo tick; sleep 20", { timeoutMs: 30_000 });
          expect(isRun(obs) && obs.extras.metadata.exit_code).toBe(-1);
          expect(obs.content).toContain("tick");
          expect(isRun(obs) && obs.extras.metadata.suffix).toContain(
            `no new output after ${noChange} seconds`,
          );
          if (caps.stdin) await runtime.runCommand("C-c", { isInput: true, timeoutMs: 5000 });
          else await runtime.runCommand("", { timeoutMs: 25_000, blocking: true });
        },
        timeout,
      );

      it.skipIf(!caps.stdin)(
        "sends input to a running command",
        async () => {
          const first = await runtime.runCommand("read -r line; echo got-$line", {
            timeoutMs: 1000,
            blocking: true,
          });
          expect(isRun(first) && first.extras.metadata.exit_code).toBe(-1);
          const second = await runtime.runCommand("hello", { isInput: true, timeoutMs: 5000 });
          expect(second.content).toContain("got-hello");
          expect(isRun(second) && second.extras.metadata.exit_code).toBe(0);
        },
        timeout,
      );

      it.skipIf(!caps.stdin)(
        "input with nothing running is an error observation",
        async () => {
          const obs = await runtime.runCommand("x", { isInput: true });
          expect(obs.content).toContain("No previous running command to interact with");
        },
        timeout,
      );
    });

    describe("files", () => {
      const dir = `${base}/files`;

      it(
        "writes, reads line ranges, and lists",
        async () => {
          await runtime.writeFile(`${dir}/notes.txt`, "one\ntwo\nthree");
          expect(await runtime.readFile(`${dir}/notes.txt`)).toBe("one\ntwo\nthree\n");
          expect(await runtime.readFile(`${dir}/notes.txt`, { start: 1, end: 2 })).toBe("two\n");
          await runtime.writeFile(`${dir}/Sub/inner.txt`, "x");
          await runtime.writeFile(`${dir}/alpha.txt`, "a");
          expect(await runtime.listFiles(dir)).toEqual(["Sub/", "alpha.txt", "notes.txt"]);
        },
        timeout,
      );

      it(
        "edits with str_replace_editor semantics (create, str_replace, insert, undo)",
        async () => {
          const path = `${dir}/code.py`;
          await runtime.edit(path, { command: "create", fileText: "def f():\n    return 1\n" });
          const obs = await runtime.edit(path, {
            command: "str_replace",
            oldStr: "return 1",
            newStr: "return 2",
          });
          expect(obs.extras.diff).toContain("+    return 2");
          expect(await runtime.readFile(path)).toContain("return 2");
          await runtime.edit(path, { command: "insert", insertLine: 0, newStr: "# header" });
          expect((await runtime.readFile(path)).split("\n")[0]).toBe("# header");
          await runtime.edit(path, { command: "undo_edit" });
          expect((await runtime.readFile(path)).split("\n")[0]).toBe("def f():");
        },
        timeout,
      );

      it.skipIf(!caps.fileTransfer)(
        "uploads a file and a directory, and downloads them as a zip",
        async () => {
          await writeHostFile(join(hostDir, "single.txt"), "single-content");
          await mkdir(join(hostDir, "tree", "deep"), { recursive: true });
          await writeHostFile(join(hostDir, "tree", "a.txt"), "A");
          await writeHostFile(join(hostDir, "tree", "deep", "b.txt"), "B");
          await runtime.upload(join(hostDir, "single.txt"), `${dir}/up`);
          await runtime.upload(join(hostDir, "tree"), `${dir}/up`);
          expect(await runtime.readFile(`${dir}/up/single.txt`)).toBe("single-content");
          expect((await runtime.readFile(`${dir}/up/tree/deep/b.txt`)).trimEnd()).toBe("B");
          const zip = readZip(await runtime.download(`${dir}/up/tree`));
          const files = Object.fromEntries(
            zip.filter((e) => !e.path.endsWith("/")).map((e) => [e.path, Buffer.from(e.data).toString()]),
          );
          expect(files).toEqual({ "a.txt": "A", "deep/b.txt": "B" });
        },
        timeout,
      );
    });

    describe("bad input", () => {
      it(
        "reading a missing file throws NOT_FOUND",
        async () => {
          await expectCode(runtime.readFile(`${base}/missing/nope.txt`), "NOT_FOUND");
        },
        timeout,
      );

      it(
        "an edit whose old_str is absent throws INVALID_ARGUMENT with the editor's message",
        async () => {
          await runtime.writeFile(`${base}/files/e.txt`, "abc");
          await expectCode(
            runtime.edit(`${base}/files/e.txt`, {
              command: "str_replace",
              oldStr: "zzz",
              newStr: "y",
            }),
            "INVALID_ARGUMENT",
          );
        },
        timeout,
      );

      it(
        "an unknown action type throws INVALID_ARGUMENT before reaching the sandbox",
        async () => {
          await expectCode(runtime.run({ action: "teleport", args: {} } as never), "INVALID_ARGUMENT");
        },
        timeout,
      );

      it.skipIf(!caps.fileTransfer)(
        "uploading to a relative path or from a missing file is refused",
        async () => {
          await expectCode(runtime.upload(join(hostDir, "single.txt"), "relative/dir"), "INVALID_ARGUMENT");
          await expectCode(runtime.upload(join(hostDir, "missing.txt"), "/tmp"), "NOT_FOUND");
        },
        timeout,
      );

      // One contract or the other, by the declared capability: a backend runs the one that applies to it (the
      // other is not a test it skipped, so none is reported as skipped).
      if (caps.ipython) {
        it(
          "run_ipython keeps state between cells",
          async () => {
            await runtime.run({ action: "run_ipython", args: { code: "x = 41" } });
            const obs = await runtime.run({ action: "run_ipython", args: { code: "print(x + 1)" } });
            expect(obs.content).toContain("42");
          },
          timeout,
        );
      } else {
        it("run_ipython on a backend without it throws UNSUPPORTED", async () => {
          await expectCode(runtime.run({ action: "run_ipython", args: { code: "1" } }), "UNSUPPORTED");
        });
      }
    });

    describe("secrets", () => {
      it(
        "are injected but never appear in observations, events, errors or logs",
        async () => {
          const obs = await runtime.runCommand('echo "$CONFORMANCE_TOKEN|$CONFORMANCE_REGEX"');
          expect(obs.content).toContain("[redacted]");
          const b64 = await runtime.runCommand('printf %s "$CONFORMANCE_TOKEN" | base64');
          let caught: unknown;
          try {
            await runtime.readFile(`/tmp/${kit.secrets.CONFORMANCE_TOKEN}/x`);
          } catch (err) {
            caught = err;
          }
          const everything =
            JSON.stringify({
              obs,
              b64,
              events,
              logs: kit.logs,
              err: String(caught),
              errMsg: (caught as Error)?.message,
            }) +
            inspect(runtime) +
            JSON.stringify(runtime);
          for (const value of Object.values(kit.secrets)) {
            expect(everything).not.toContain(value);
            expect(everything).not.toContain(Buffer.from(value).toString("base64"));
          }
        },
        timeout,
      );
    });

    describe("secret files", () => {
      it(
        "their content is redacted when printed, and never appears in events, errors or logs",
        async () => {
          const [path] = Object.keys(kit.files.entries);
          const sandboxPath = path!.replace(/^~\//, "$HOME/");
          const cat = await runtime.runCommand(`cat "${sandboxPath}"`);
          expect(isRun(cat) && cat.extras.metadata.exit_code).toBe(0);
          expect(cat.content).toContain("file_secret = [redacted]");
          const secretB64 = await runtime.runCommand(
            `grep -o 'cf-file-only-[0-9a-f]*' "${sandboxPath}" | tr -d '\\n' | base64`,
          );
          const home = (await runtime.runCommand('printf %s "$HOME"')).content.trim();
          const read = await runtime.readFile(sandboxPath.replace("$HOME/", `${home}/`));
          expect(read).toContain("file_secret = [redacted]");
          const everything =
            JSON.stringify({ cat, secretB64, read, events, logs: kit.logs }) +
            inspect(runtime) +
            JSON.stringify(runtime);
          expect(everything).not.toContain(kit.files.secret);
          expect(everything).not.toContain(Buffer.from(kit.files.secret).toString("base64"));
        },
        timeout,
      );
    });

    describe("close, handle and attach", () => {
      it.skipIf(!caps.attach)(
        "a handle survives JSON and re-attaches to the live sandbox; a closed one gives NOT_FOUND",
        async () => {
          const ctx = conformanceContext();
          const first = await options.create({
            sessionId: sessionId(),
            context: ctx.context,
            noChangeTimeoutSeconds: noChange,
          });
          await first.connect();
          await first.runCommand("export AR_ATTACH_MARK=still-here");
          const handle = JSON.parse(JSON.stringify(first.handle())) as RuntimeHandle;
          expect(handle.version).toBe(1);
          expect(options.attach, "capabilities.attach is on, so pass `attach` to the kit").toBeDefined();
          const second = await options.attach!(handle, { context: ctx.context });
          await second.connect();
          expect((await second.runCommand("echo $AR_ATTACH_MARK")).content.trim()).toBe("still-here");
          await first.close();
          await second.close();
          const third = await options.attach!(handle, { context: ctx.context });
          await expectCode(third.connect(), "NOT_FOUND");
          await third.close();
        },
        timeout * 2,
      );

      it(
        "close is idempotent and later calls fail with FAILED_PRECONDITION",
        async () => {
          const ctx = conformanceContext();
          const rt = await options.create({
            sessionId: sessionId(),
            context: ctx.context,
            noChangeTimeoutSeconds: noChange,
          });
          await expectCode(rt.runCommand("echo before-connect"), "FAILED_PRECONDITION");
          await rt.connect();
          await Promise.all([rt.close(), rt.close()]);
          await rt.close();
          expect(rt.status).toBe(RuntimeStatus.STOPPED);
          await expectCode(rt.runCommand("echo after-close"), "FAILED_PRECONDITION");
          await expectCode(rt.connect(), "FAILED_PRECONDITION");
        },
        timeout,
      );
    });
  });
}
