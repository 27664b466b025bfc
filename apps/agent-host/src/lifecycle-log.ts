import { type Logger, type Runtime, RuntimeStatus, type StatusEvent } from "@agent-runtime/runtime-core";

/** What {@link logSandboxLifecycle} puts on every line. */
export interface SandboxLogContext {
  sessionId: string;
  backend: string;
  /** `attach`: a sandbox found again after a restart ("re-attached" instead of "created"). */
  mode?: "create" | "attach";
}

const FAILED: ReadonlySet<string> = new Set([
  RuntimeStatus.ERROR,
  RuntimeStatus.ERROR_RUNTIME_DISCONNECTED,
  RuntimeStatus.ERROR_MEMORY,
  RuntimeStatus.BUDGET_EXCEEDED,
]);

/** The sandbox id of a runtime that has one (from its handle's data; the rest of the handle is not read). */
function sandboxIdOf(runtime: Runtime): string | undefined {
  try {
    const id = runtime.handle().data.sandboxId;
    return typeof id === "string" && id !== "" ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Logs a sandbox's lifecycle at info from its runtime's status events: `sandbox starting`, `sandbox created`
 * (with its id), `sandbox ready` (with `startMs`, from the first status to ready), `sandbox failed` (with the
 * status and the reason, which runtimes redact), `sandbox closed` (with `upMs` since ready). Ids and timings
 * only: no handle, key or secret value is logged. Returns the unsubscribe function.
 */
export function logSandboxLifecycle(
  runtime: Runtime,
  logger: Logger,
  context: SandboxLogContext,
): () => void {
  const base = { sessionId: context.sessionId, backend: context.backend };
  let startedAt: number | undefined;
  let readyAt: number | undefined;
  let sandboxId: string | undefined;
  let failed = false;
  return runtime.onStatus((event: StatusEvent) => {
    const ids = { ...base, ...(sandboxId ? { sandboxId } : {}) };
    switch (event.status) {
      case RuntimeStatus.BUILDING_RUNTIME:
      case RuntimeStatus.STARTING_RUNTIME:
        if (startedAt === undefined) {
          startedAt = event.at;
          logger.info(context.mode === "attach" ? "sandbox re-attaching" : "sandbox starting", ids);
        }
        return;
      case RuntimeStatus.RUNTIME_STARTED:
        sandboxId = sandboxIdOf(runtime);
        logger.info("sandbox created", { ...base, ...(sandboxId ? { sandboxId } : {}) });
        return;
      case RuntimeStatus.READY: {
        sandboxId ??= sandboxIdOf(runtime);
        readyAt = event.at;
        const startMs = startedAt === undefined ? undefined : event.at - startedAt;
        logger.info(context.mode === "attach" ? "sandbox re-attached" : "sandbox ready", {
          ...base,
          ...(sandboxId ? { sandboxId } : {}),
          ...(startMs !== undefined ? { startMs } : {}),
        });
        return;
      }
      case RuntimeStatus.STOPPED:
        if (startedAt === undefined && readyAt === undefined && !failed) return;
        logger.info("sandbox closed", {
          ...ids,
          ...(readyAt !== undefined ? { upMs: event.at - readyAt } : { everReady: false }),
        });
        return;
      default:
        if (!FAILED.has(event.status)) return;
        // A sandbox that dies while starting also fails connect(), whose ERROR carries the fuller reason.
        if (readyAt === undefined && event.status === RuntimeStatus.ERROR_RUNTIME_DISCONNECTED) return;
        failed = true;
        logger.info("sandbox failed", {
          ...ids,
          status: event.status.replace("STATUS$", ""),
          phase: readyAt === undefined ? "start" : "running",
          reason: event.message,
        });
    }
  });
}
