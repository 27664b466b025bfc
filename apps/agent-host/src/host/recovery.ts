import { type Logger, noopRedactor, type Redactor } from "@agent-runtime/runtime-core";
import type { ComposedPlugins } from "../compose.js";
import type { HostStore } from "../store.js";
import type { HostCore } from "./core.js";
import { errorInfo } from "./error-info.js";
import { sweepOrphans } from "./orphans.js";
import type { SessionLifecycle } from "./sessions.js";

/** Message of tasks found unfinished when the host starts. */
export const INTERRUPTED_RUNNING =
  "Interrupted by host restart: the host stopped while this action was running, so whether it took effect in the sandbox is unknown. Inspect the sandbox and submit the action again if needed.";
/** Message of queued tasks found when the host starts. */
export const INTERRUPTED_QUEUED =
  "Interrupted by host restart: the host stopped before this queued action started; it never ran. Submit it again.";

/**
 * Re-attached runtimes do not resolve their secrets again, so the host does it for each session it will
 * re-attach, before it accepts requests: what it stores about them stays redacted (and the secrets plugin's live
 * redactor learns their values). A session whose secrets cannot be resolved gets no entry (its re-attach is
 * refused in {@link recover}).
 */
export async function resolveRecoveryRedactors(
  store: HostStore,
  plugins: ComposedPlugins,
  logger: Logger,
): Promise<Map<string, Redactor>> {
  const out = new Map<string, Redactor>();
  const secrets = plugins.secrets;
  for (const session of store.openSessions()) {
    if (session.state !== "ready" || !store.handleOf(session.id)) continue;
    if (!secrets) {
      out.set(session.id, plugins.redactor ?? noopRedactor);
      continue;
    }
    try {
      const resolved = await secrets.resolve({ sessionId: session.id });
      out.set(session.id, plugins.redactor ?? resolved.redactor);
    } catch (err) {
      logger.warn("resolving a session's secrets for re-attach failed", {
        sessionId: session.id,
        code: errorInfo(err).code,
      });
    }
  }
  return out;
}

/**
 * What a restarted host does with what the previous run left: unfinished tasks are marked interrupted, sessions
 * that were ready re-attach to their sandboxes, the others become `error` (leases of lost sandboxes settled).
 * Once every re-attach succeeded or failed, cost-guard's orphan sweep removes sandboxes no open lease pays for
 * (one a killed host was still creating) and settles leases whose sandbox is gone (see {@link sweepOrphans}).
 */
export async function recover(
  core: HostCore,
  sessions: SessionLifecycle,
  redactors: ReadonlyMap<string, Redactor>,
): Promise<void> {
  const { store } = core;
  const now = core.now();
  for (const task of store.unfinishedTasks()) {
    const message = task.state === "running" ? INTERRUPTED_RUNNING : INTERRUPTED_QUEUED;
    if (store.finishTask(task.id, "failed", now, { error: { code: "UNAVAILABLE", message } }))
      core.taskChanged(task.id);
  }
  const attaching: Promise<unknown>[] = [];
  for (const session of store.openSessions()) {
    const handle = store.handleOf(session.id);
    if (session.state === "starting" || !handle) {
      core.setSessionState(session.id, "error", {
        error: {
          code: "UNAVAILABLE",
          message:
            "Interrupted by host restart while the sandbox was starting; delete this session and create a new one.",
        },
      });
      attaching.push(
        core.settleLostLease(session.id, handle, "host restarted while the sandbox was starting"),
      );
      continue;
    }
    if (handle.backend !== core.backend) {
      core.setSessionState(session.id, "error", {
        error: {
          code: "FAILED_PRECONDITION",
          message: `This session runs on the "${handle.backend}" backend but the host now uses "${core.backend}"; restart the host with runtime.plugin "${handle.backend}" to re-attach, or delete the session.`,
        },
      });
      continue;
    }
    const redactor = redactors.get(session.id);
    if (!redactor) {
      core.setSessionState(session.id, "error", {
        error: {
          code: "UNAVAILABLE",
          message:
            "Not re-attached after the host restart: this session's secrets could not be resolved, so what its sandbox returns could not be redacted (see the host log). Delete this session and create a new one.",
        },
      });
      continue;
    }
    core.setSessionState(session.id, "starting", { error: null });
    const live = sessions.attach(session.id, handle, redactor);
    attaching.push(live.settled);
    core.logger.info("re-attaching session after restart", {
      sessionId: session.id,
      backend: handle.backend,
    });
  }
  await Promise.all(attaching);
  await sweepOrphans(core);
}
