import type { Logger, Runtime, RuntimeProvider } from "@agent-runtime/runtime-core";
import { logSandboxLifecycle } from "../lifecycle-log.js";
import type { Progress } from "./progress.js";

/**
 * The "start the sandbox" step shared by `demo` and `run`: creates the runtime (handed to `onCreated` at once,
 * so the caller can close it whatever happens next), shows its status events as step detail, closes it on
 * abort, and connects. With a `logger`, the sandbox's lifecycle is logged at info (see logSandboxLifecycle).
 */
export function startSandboxStep(
  progress: Progress,
  provider: RuntimeProvider,
  sessionId: string,
  signal: AbortSignal | undefined,
  onCreated: (runtime: Runtime) => void,
  logger?: Logger,
): Promise<{ value: Runtime; durationMs: number }> {
  return progress.step("start the sandbox", async (step) => {
    const rt = await provider.create({ sessionId });
    onCreated(rt);
    if (logger) logSandboxLifecycle(rt, logger, { sessionId, backend: rt.backend });
    signal?.addEventListener("abort", () => void rt.close().catch(() => undefined), { once: true });
    const off = rt.onStatus((e) =>
      step.update(e.status.replace("STATUS$", "").toLowerCase().replaceAll("_", " ")),
    );
    try {
      await rt.connect(signal ? { signal } : {});
    } finally {
      off();
    }
    return rt;
  });
}
