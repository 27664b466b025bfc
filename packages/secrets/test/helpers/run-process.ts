import { type ChildProcess, spawn } from "node:child_process";

/** What a child process printed, and how it ended. */
export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child closed its stdin before taking all of `input` (EPIPE): its exit status says why. */
  inputRefused: boolean;
}

/**
 * Feeds `input` to `child`'s stdin and collects its output until it closes.
 *
 * A child may exit without reading its stdin (`git config`, `git ls-remote`, a CLI that fails early), and under
 * load it can do so before this process gets to write even an empty string: the write then fails with EPIPE,
 * which stdin emits as an `error` event. Unhandled, that event crashes the test run. It is handled here: EPIPE
 * only means the child did not want the rest of its input, which its exit status and output already report;
 * any other stdin error fails the call.
 */
export function collectProcess(child: ChildProcess, input: string | Buffer = ""): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    let inputRefused = false;
    let stdinError: Error | undefined;
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin?.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") inputRefused = true;
      else stdinError ??= err;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (stdinError) reject(stdinError);
      else resolve({ code, signal, stdout, stderr, inputRefused });
    });
    child.stdin?.end(input);
  });
}

/** Spawns `command` with `env` (nothing inherited), writes `input` to its stdin, and collects the result. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { env: Record<string, string>; input?: string | Buffer },
): Promise<ProcessResult> {
  const child = spawn(command, args, { env: options.env, stdio: ["pipe", "pipe", "pipe"] });
  return collectProcess(child, options.input);
}
