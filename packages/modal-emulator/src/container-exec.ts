import { Demuxer, type DockerEngine, type ExecStream } from "@agent-runtime/docker-engine";
import { ExecRecord, type StdinTarget } from "./exec.js";
import type { ExecOptions } from "./sandbox.js";

/** How often, and how many times, an exec whose stream ended is inspected for its exit code. */
const EXIT_POLL_MS = 50;
const EXIT_POLLS = 40;

/** A stdin target on an attached engine stream (ending it half-closes the connection: the process sees EOF). */
export function stdinOf(stream: ExecStream): StdinTarget {
  stream.input?.on("error", () => {});
  return {
    write: (data) => {
      if (stream.input && !stream.input.destroyed) stream.input.write(data);
    },
    end: () => {
      if (stream.input && !stream.input.destroyed) stream.input.end();
    },
  };
}

/** An exec that never ran: `message` on its stderr, exit code `code`. */
export function failedExec(execId: string, message: string, code: number): ExecRecord {
  const record = new ExecRecord(execId, { write: () => {}, end: () => {} }, () => {});
  record.stderr.write(Buffer.from(`modal-emulator: ${message}\n`));
  record.finish({ code });
  return record;
}

/**
 * Runs an exec in a container through the engine's exec API: stdin, stdout and stderr over one attached stream
 * (demultiplexed; `stderrConfig` 2 merges stderr into stdout, 0 drops a stream), the exit code from the exec's
 * inspection once the stream ends. The engine cannot signal an exec: killing one drops its stream, and the
 * process may run on until the sandbox ends.
 */
export async function startEngineExec(
  engine: DockerEngine,
  containerId: string,
  options: ExecOptions,
  sandbox: { workdir: string; running: () => boolean },
): Promise<ExecRecord> {
  let engineExecId: string;
  let stream: ExecStream;
  try {
    engineExecId = await engine.createExec(containerId, {
      Cmd: options.argv,
      // The container's environment (the sandbox's env and secrets) applies already.
      Env: Object.entries(options.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: options.workdir ?? sandbox.workdir,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    stream = await engine.startExec(engineExecId);
  } catch (err) {
    return failedExec(options.execId, `${options.argv[0]}: ${(err as Error).message}`, 126);
  }
  const record = new ExecRecord(options.execId, stdinOf(stream), () => stream.close());
  const errTarget = options.stderrConfig === 2 ? record.stdout : record.stderr;
  const demux = new Demuxer((kind, data) => {
    if (kind === "stderr") {
      if (options.stderrConfig !== 0) errTarget.write(data);
    } else if (options.stdoutConfig !== 0) record.stdout.write(data);
  });
  stream.output.on("data", (c: Buffer) => demux.write(c));
  stream.output.on("error", () => {});
  let ended = false;
  const onEnd = (): void => {
    if (ended) return;
    ended = true;
    void exitOf(engine, engineExecId, record, sandbox.running);
  };
  stream.output.once("end", onEnd);
  stream.output.once("close", onEnd);
  return record;
}

async function exitOf(
  engine: DockerEngine,
  engineExecId: string,
  record: ExecRecord,
  running: () => boolean,
): Promise<void> {
  for (let i = 0; i < EXIT_POLLS && record.status === undefined; i++) {
    const info = await engine.inspectExec(engineExecId).catch(() => undefined);
    if (info && !info.Running && info.ExitCode !== null) {
      record.finish({ code: info.ExitCode });
      return;
    }
    if (!info || !running()) break;
    await new Promise((r) => setTimeout(r, EXIT_POLL_MS));
  }
  // Killed (its stream dropped) or the container went away.
  record.finish({ signal: 9 });
}
