import type { Metadata } from "@grpc/grpc-js";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ControlPlane } from "./control-plane.js";
import type { ExecRecord, ExitStatus } from "./exec.js";
import { GrpcError, invalidArgument, notFound, unauthenticated } from "./grpc-errors.js";
import type { CallContext, Handlers } from "./grpc-service.js";
import { verifyJwt } from "./jwt.js";
import type {
  ExecIdMsg,
  SandboxStdinWriteV2Msg,
  SandboxStdioReadV2Msg,
  TaskExecStartMsg,
  TaskExecStdinWriteMsg,
  TaskExecStdinWriteStreamMsg,
  TaskExecStdioReadMsg,
} from "./messages.js";
import type { Sandbox, SandboxRegistry } from "./registry.js";

const STDIO_CHUNK_BYTES = 64 * 1024;

/**
 * Checks the router's `authorization: Bearer <jwt>` metadata: a token the emulator signed, not expired, for
 * the task named in the request. Throws UNAUTHENTICATED otherwise (the SDK then refreshes its token when it
 * is about to expire).
 */
export function authorizeRouterCall(metadata: Metadata, request: unknown, jwtKey: Buffer): void {
  const header = metadata.get("authorization")[0];
  const match = typeof header === "string" ? /^Bearer (.+)$/.exec(header) : null;
  if (!match) throw unauthenticated("missing 'authorization: Bearer <jwt>' metadata for the command router");
  const claims = verifyJwt(match[1]!, jwtKey);
  if (typeof claims === "string") throw unauthenticated(`command router token rejected: ${claims}`);
  const taskId = (request as { task_id?: string; start?: { task_id?: string } } | undefined)?.task_id;
  if (taskId && taskId !== claims.sub) {
    throw new GrpcError(GrpcStatus.PERMISSION_DENIED, `token is for task ${claims.sub}, not ${taskId}`);
  }
}

function exitMsg(status: ExitStatus | undefined): object {
  if (!status) return {};
  return status.signal !== undefined ? { signal: status.signal } : { code: status.code ?? 0 };
}

/** The `modal.task_command_router.TaskCommandRouter` service: execs, their stdio, and V2 sandbox stdio. */
export class CommandRouter {
  readonly #registry: SandboxRegistry;
  readonly #controlPlane: ControlPlane;
  readonly #jwtKey: Buffer;

  constructor(registry: SandboxRegistry, controlPlane: ControlPlane, jwtKey: Buffer) {
    this.#registry = registry;
    this.#controlPlane = controlPlane;
    this.#jwtKey = jwtKey;
  }

  /** The gRPC handlers. */
  handlers(): Handlers {
    return {
      unary: {
        TaskExecStart: async (req) => this.#execStart(req as TaskExecStartMsg),
        TaskExecWait: async (req, ctx) => exitMsg(await this.#exec(req as ExecIdMsg).wait(ctx.signal)),
        TaskExecPoll: async (req) => exitMsg(this.#exec(req as ExecIdMsg).status),
        TaskExecStdinWrite: async (req) => this.#stdinWrite(req as TaskExecStdinWriteMsg),
        TaskExecStdinStatus: async (req) => {
          const exec = this.#exec(req as ExecIdMsg);
          return { num_bytes_written: exec.stdin.bytesWritten, closed: exec.stdin.closed };
        },
        SandboxStdinWriteV2: async (req) => this.#sandboxStdinWrite(req as SandboxStdinWriteV2Msg),
        SandboxWaitUntilReady: async (req) => {
          const sb = this.#sandbox((req as { task_id?: string }).task_id);
          await sb.ready().catch(() => {});
          return { ready_at: sb.startedAt };
        },
      },
      serverStream: {
        TaskExecStdioRead: async (req, ctx, write) =>
          this.#execStdioRead(req as TaskExecStdioReadMsg, ctx, write),
        SandboxStdioReadV2: async (req, ctx, write) =>
          this.#sandboxStdioRead(req as SandboxStdioReadV2Msg, ctx, write),
      },
      clientStream: {
        TaskExecStdinWriteStream: async (messages, ctx) => this.#stdinWriteStream(messages, ctx),
      },
    };
  }

  #sandbox(taskId: string | undefined): Sandbox {
    const sb = this.#registry.getByTask(taskId);
    sb.touch();
    return sb;
  }

  #exec(req: ExecIdMsg): ExecRecord {
    const sb = this.#sandbox(req.task_id);
    const exec = sb.execs.get(req.exec_id ?? "");
    if (!exec) throw notFound(`Exec ${req.exec_id ?? "(none)"} not found in task ${req.task_id}`);
    return exec;
  }

  async #execStart(req: TaskExecStartMsg): Promise<object> {
    const sb = this.#sandbox(req.task_id);
    if (!req.exec_id) throw invalidArgument("exec_id is required");
    const argv = req.command_args ?? [];
    if (argv.length === 0) throw invalidArgument("command_args must not be empty");
    if (!sb.accepting && !sb.execs.has(req.exec_id)) {
      throw notFound(`Sandbox ${sb.spec.sandboxId} has finished: task ${sb.spec.taskId} is not running`);
    }
    const env: Record<string, string> = { ...(req.env ?? {}) };
    for (const id of req.secret_ids ?? []) Object.assign(env, this.#controlPlane.secretValues(id));
    Object.assign(env, this.#controlPlane.resolveSecretSources(req.secret_sources));
    if (req.workdir !== undefined && req.workdir !== "" && !req.workdir.startsWith("/")) {
      throw invalidArgument(`workdir must be an absolute path, got: ${req.workdir}`);
    }
    try {
      await sb.exec({
        execId: req.exec_id,
        argv,
        workdir: req.workdir || undefined,
        env,
        timeoutSecs: req.timeout_secs || undefined,
        stdoutConfig: req.stdout_config ?? 0,
        stderrConfig: req.stderr_config ?? 0,
      });
    } catch {
      throw notFound(`Sandbox ${sb.spec.sandboxId} has finished: task ${sb.spec.taskId} is not running`);
    }
    return {};
  }

  async #execStdioRead(req: TaskExecStdioReadMsg, ctx: CallContext, write: (m: object) => Promise<void>) {
    const exec = this.#exec(req);
    const buffer = req.file_descriptor === 1 ? exec.stderr : exec.stdout;
    for await (const slice of buffer.read(req.offset ?? 0, ctx.signal, STDIO_CHUNK_BYTES)) {
      await write({ data: slice.data });
    }
  }

  async #sandboxStdioRead(req: SandboxStdioReadV2Msg, ctx: CallContext, write: (m: object) => Promise<void>) {
    const sb = this.#sandbox(req.task_id);
    const buffer = req.file_descriptor === 1 ? sb.stderr : sb.stdout;
    for await (const slice of buffer.read(req.offset ?? 0, ctx.signal, STDIO_CHUNK_BYTES)) {
      await write({ data: slice.data, starting_offset: slice.offset });
    }
  }

  #stdinWrite(req: TaskExecStdinWriteMsg): object {
    const exec = this.#exec(req);
    const result = exec.stdin.write(req.offset ?? 0, req.data ?? Buffer.alloc(0), req.eof === true);
    if (!result.ok) throw new GrpcError(GrpcStatus.FAILED_PRECONDITION, result.reason);
    return {};
  }

  #sandboxStdinWrite(req: SandboxStdinWriteV2Msg): object {
    const sb = this.#sandbox(req.task_id);
    const result = sb.writeStdinV2(req.offset ?? 0, req.data ?? Buffer.alloc(0), req.eof === true);
    if (!result.ok) throw new GrpcError(GrpcStatus.FAILED_PRECONDITION, result.reason);
    return {};
  }

  async #stdinWriteStream(messages: AsyncIterable<unknown>, ctx: CallContext): Promise<object> {
    let exec: ExecRecord | undefined;
    let offset = 0;
    for await (const raw of messages) {
      if (ctx.signal.aborted) break;
      const msg = raw as TaskExecStdinWriteStreamMsg;
      if (msg.start) {
        // The call-level check saw no request; the stream names its task here.
        authorizeRouterCall(ctx.metadata, msg.start, this.#jwtKey);
        exec = this.#exec(msg.start);
        offset = msg.start.offset ?? 0;
      } else if (!exec) {
        throw invalidArgument("the first TaskExecStdinWriteStream message must be `start`");
      } else if (msg.data) {
        const result = exec.stdin.write(offset, msg.data, false);
        if (!result.ok) throw new GrpcError(GrpcStatus.FAILED_PRECONDITION, result.reason);
        offset += msg.data.length;
      } else if (msg.end) {
        exec.stdin.close();
      }
    }
    return {};
  }
}
