import {
  type Action,
  type Runtime,
  RuntimeError,
  redactionStream,
  serializeAction,
  serializeObservation,
} from "@agent-runtime/runtime-core";
import type { TaskView } from "../api/schemas.js";
import { taskView } from "../api/views.js";
import { runtimeRedactor } from "../redaction.js";
import type { ErrorInfo } from "../store.js";
import type { HostCore, LiveSession } from "./core.js";
import { errorInfo } from "./error-info.js";
import { newId } from "./sessions.js";

/**
 * Tasks: actions queued on a session and run one at a time, in order, each stored as it goes (queued ->
 * running -> completed | failed | cancelled) with its observation or error, redacted.
 */
export class TaskQueue {
  readonly #core: HostCore;

  constructor(core: HostCore) {
    this.#core = core;
  }

  /** See `AgentHost.submitAction`. */
  submit(sessionId: string, action: Action): TaskView {
    const core = this.#core;
    core.assertOpen();
    const session = core.requireSession(sessionId);
    const live = core.live.get(sessionId);
    if (!live || live.closing || (session.state !== "starting" && session.state !== "ready")) {
      const why = session.error ? `: ${session.error.message}` : "";
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `Session "${sessionId}" is ${session.state}${why}; actions need a starting or ready session.`,
      );
    }
    const { maxQueuedTasks } = core.config.sessions;
    if (live.queued >= maxQueuedTasks) {
      throw new RuntimeError(
        "RATE_LIMITED",
        `Session "${sessionId}" has ${live.queued} queued actions, the limit (sessions.maxQueuedTasks) is ${maxQueuedTasks}; wait for some to finish.`,
      );
    }
    // The sandbox gets the action as given; the host keeps (and streams) it with the session's secrets redacted.
    const task = core.store.insertTask({
      id: newId("t"),
      sessionId,
      action: live.redactor.redactDeep(serializeAction(action)),
      nowMs: core.now(),
    });
    core.emit(sessionId, "task", { task: taskView(task) });
    live.queued++;
    live.chain = live.chain
      .then(() => this.#run(live, task.id, action))
      .catch((err: unknown) => {
        // Only reachable when the store fails (e.g. closed under us): keep the queue going, say what broke.
        if (!core.closed)
          core.logger.error("task bookkeeping failed", { taskId: task.id, code: errorInfo(err).code });
      });
    return taskView(task);
  }

  async #run(live: LiveSession, taskId: string, action: Action): Promise<void> {
    const core = this.#core;
    live.queued--;
    if (core.closed) return;
    let runtime: Runtime;
    try {
      runtime = await live.ready;
    } catch (err) {
      if (core.closed) return;
      const info = errorInfo(err, live.redactor);
      const error = { code: info.code, message: `The session's sandbox failed to start: ${info.message}` };
      if (core.store.finishTask(taskId, "failed", core.now(), { error })) core.taskChanged(taskId);
      return;
    }
    if (core.closed || live.closing || !core.store.startTask(taskId, core.now())) return;
    core.taskChanged(taskId);
    let result: { state: "completed" | "failed"; observation?: Record<string, unknown>; error?: ErrorInfo };
    const output = this.#outputRelay(live, taskId, runtime);
    try {
      const observation = await runtime.run(action, { signal: live.abort.signal, onOutput: output.write });
      output.end();
      // The runtime redacted it already; again here, so that nothing a runtime missed is stored.
      result = {
        state: "completed",
        observation: live.redactor.redactDeep(serializeObservation(observation)),
      };
    } catch (err) {
      const info = errorInfo(err, live.redactor);
      result = {
        state: "failed",
        error: live.closing
          ? { code: "CANCELLED", message: `The session was deleted while this action ran (${info.message}).` }
          : info,
      };
    }
    if (core.closed) return;
    if (core.store.finishTask(taskId, result.state, core.now(), result)) core.taskChanged(taskId);
    core.events.endOutput(taskId);
  }

  /**
   * Where a running task's output goes: `output` events of its session (live, not stored). A runtime that shows
   * its redactor (runtime-core's BaseRuntime) redacted the pieces as a stream already (a split secret caught);
   * each piece is redacted again with the session's redactor, as observations are, without holding anything
   * back. For any other runtime the host redacts them as a stream itself.
   */
  #outputRelay(
    live: LiveSession,
    taskId: string,
    runtime: Runtime,
  ): { write: (text: string) => void; end: () => void } {
    const core = this.#core;
    let seq = 0;
    const emit = (content: string) => {
      if (!content || core.closed) return;
      core.events.deliverOutput({ sessionId: live.id, taskId, seq: ++seq, content, atMs: core.now() });
    };
    if (runtimeRedactor(runtime)) {
      return { write: (text) => emit(live.redactor.redact(text)), end: () => {} };
    }
    const stream = redactionStream(live.redactor);
    return { write: (text) => emit(stream.write(text)), end: () => emit(stream.flush()) };
  }
}
