import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";
import { MarkerScanner } from "../shell/marker-scanner.js";
import { OutputBuffer } from "../shell/output-buffer.js";
import { killGroup } from "../shell/process-tree.js";

/**
 * The Python side: reads JSON requests on fd 3, runs each cell in one namespace (the last expression's repr is
 * printed, as IPython shows `Out[]`), supports `!cmd`, `%pip`, `%cd`, and prints a marker when done.
 * stderr is merged into stdout so output keeps its order.
 */
const DRIVER = String.raw`
import ast, json, os, subprocess, sys, traceback
os.dup2(1, 2)
NONCE = sys.argv[1]
ns = {"__name__": "__main__"}
def _ar_shell(cmd):
    sys.stdout.flush()
    subprocess.run(cmd, shell=True)
ns["_ar_shell"] = _ar_shell
def transform(code):
    out = []
    for line in code.split("\n"):
        s = line.lstrip()
        indent = line[: len(line) - len(s)]
        if s.startswith("!"):
            out.append(indent + "_ar_shell(" + repr(s[1:]) + ")")
        elif s.startswith("%pip ") or s.startswith("!pip "):
            out.append(indent + "_ar_shell(" + repr(sys.executable + " -m pip " + s[5:]) + ")")
        elif s.startswith("%cd "):
            out.append(indent + "__import__('os').chdir(" + repr(s[4:].strip()) + ")")
        elif s.startswith("%") :
            out.append(indent + "raise RuntimeError(" + repr("IPython magic not supported here: " + s.split()[0]) + ")")
        else:
            out.append(line)
    return "\n".join(out)
def run(code):
    tree = ast.parse(transform(code), "<cell>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<cell>", "exec"), ns)
    if last is not None:
        value = eval(compile(last, "<cell>", "eval"), ns)
        if value is not None:
            print(repr(value))
requests = os.fdopen(3, "r", encoding="utf-8")
for line in requests:
    msg = json.loads(line)
    try:
        os.chdir(msg["cwd"])
    except OSError:
        pass
    status = "ok"
    try:
        run(msg["code"])
    except KeyboardInterrupt:
        status = "interrupted"
        print("KeyboardInterrupt")
    except SystemExit as e:
        status = "exit"
    except BaseException:
        status = "error"
        etype, value, tb = sys.exc_info()
        traceback.print_exception(etype, value, tb.tb_next)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os.write(1, ("\x1e%s\x1f%s\x1f%s\x1e\n" % (NONCE, msg["seq"], status)).encode())
`;

/** The outcome of one cell. */
export interface CellResult {
  output: string;
  status: "ok" | "error" | "interrupted" | "exit" | "timeout" | "died";
}

/**
 * One persistent Python process for `run_ipython` (not Jupyter: no rich display; see the README). Started on first
 * use; a cell that outlives its timeout is interrupted with SIGINT, and the process is restarted if it
 * does not stop.
 */
export class PythonKernel {
  readonly #pythonPath: string;
  readonly #env: Record<string, string>;
  readonly #nonce = randomBytes(12).toString("hex");
  #proc: ChildProcess | undefined;
  #requests: Writable | undefined;
  #buffer = new OutputBuffer();
  #scanner: MarkerScanner;
  #seq = 0;
  #pending: ((status: CellResult["status"]) => void) | undefined;
  #interpreter = "";

  readonly #owner: { uid: number; gid: number } | undefined;

  /** `owner`: run Python as this uid/gid (the server is root and serves another user). */
  constructor(pythonPath: string, env: Record<string, string>, owner?: { uid: number; gid: number }) {
    this.#pythonPath = pythonPath;
    this.#env = env;
    this.#owner = owner;
    this.#scanner = this.#newScanner();
  }

  /** The interpreter's path (`sys.executable`), known after the first cell. */
  get interpreter(): string {
    return this.#interpreter || this.#pythonPath;
  }

  /**
   * Starts Python if needed: "running" (already was), "started" (fresh process, empty namespace) or
   * "unavailable" (cannot be started, e.g. not installed).
   */
  async ensureStarted(cwd: string): Promise<"running" | "started" | "unavailable"> {
    if (this.#proc && this.#proc.exitCode === null && this.#proc.signalCode === null) return "running";
    const proc = spawn(this.#pythonPath, ["-u", "-c", DRIVER, this.#nonce], {
      cwd,
      env: { ...this.#env, PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      detached: true,
      ...(this.#owner ? { uid: this.#owner.uid, gid: this.#owner.gid } : {}),
    });
    const spawned = await new Promise<boolean>((res) => {
      proc.once("spawn", () => res(true));
      proc.once("error", () => res(false));
    });
    if (!spawned) return "unavailable";
    this.#proc = proc;
    this.#scanner = this.#newScanner();
    this.#buffer = new OutputBuffer();
    this.#requests = proc.stdio[3] as Writable;
    this.#requests.on("error", () => {});
    proc.stdout?.on("data", (chunk: Buffer) => this.#scanner.push(chunk));
    proc.stderr?.on("data", (chunk: Buffer) => this.#buffer.append(chunk));
    proc.once("exit", () => {
      this.#scanner.flush();
      this.#pending?.("died");
    });
    // Learn the interpreter path with a first, silent cell.
    const probe = await this.run("import sys as _ar_sys; print(_ar_sys.executable)", cwd, 10_000);
    if (probe.status !== "ok") {
      this.close();
      return "unavailable";
    }
    this.#interpreter = probe.output.trim();
    return "started";
  }

  /** Runs one cell; `timeoutMs` undefined waits without limit. */
  async run(code: string, cwd: string, timeoutMs: number | undefined): Promise<CellResult> {
    const proc = this.#proc;
    if (!proc || !this.#requests) return { output: "", status: "died" };
    this.#seq++;
    this.#buffer.clear();
    const done = new Promise<CellResult["status"]>((res) => {
      this.#pending = res;
    });
    this.#requests.write(`${JSON.stringify({ seq: this.#seq, code, cwd })}\n`);
    let timer: NodeJS.Timeout | undefined;
    let status: CellResult["status"];
    if (timeoutMs === undefined) status = await done;
    else {
      const timedOut = new Promise<"timeout">((res) => {
        timer = setTimeout(() => res("timeout"), timeoutMs);
      });
      status = await Promise.race([done, timedOut]);
      clearTimeout(timer);
      if (status === "timeout") {
        // Interrupt the cell; restart Python if it does not come back.
        if (proc.pid !== undefined) killGroup(proc.pid, "SIGINT");
        const grace = new Promise<"stuck">((res) => {
          timer = setTimeout(() => res("stuck"), 2000);
        });
        const after = await Promise.race([done, grace]);
        clearTimeout(timer);
        if (after === "stuck") this.close();
        status = "timeout";
      }
    }
    this.#pending = undefined;
    const output = this.#buffer.text();
    this.#buffer.clear();
    return { output, status };
  }

  /** Kills the Python process group. */
  close(): void {
    const proc = this.#proc;
    this.#proc = undefined;
    this.#requests = undefined;
    if (proc?.pid !== undefined) killGroup(proc.pid, "SIGKILL");
  }

  #newScanner(): MarkerScanner {
    return new MarkerScanner(
      this.#nonce,
      (chunk) => this.#buffer.append(chunk),
      (fields) => {
        const [seq, status] = fields;
        if (Number(seq) !== this.#seq) return;
        this.#pending?.((status as CellResult["status"]) ?? "ok");
      },
    );
  }
}
