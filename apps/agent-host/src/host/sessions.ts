import { randomBytes } from "node:crypto";
import {
  isRuntimeError,
  noopRedactor,
  type Redactor,
  type Runtime,
  RuntimeError,
  type RuntimeHandle,
  RuntimeStatus,
  type StatusEvent,
} from "@agent-runtime/runtime-core";
import type { CreateSessionInput, SessionView } from "../api/schemas.js";
import { logSandboxLifecycle } from "../lifecycle-log.js";
import { combineRedactors, runtimeRedactor } from "../redaction.js";
import type { SessionRecord } from "../store.js";
import { type HostCore, type LiveSession, newLiveSession } from "./core.js";
import { errorInfo } from "./error-info.js";
import { budgetRefusal, leaseIdOf, pastReservation } from "./leases.js";

/** A new random id with a prefix (`s_...`, `t_...`). */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("base64url")}`;

/**
 * The lifecycle of sessions: create (reserve, resolve secrets, start in the background), re-attach after a
 * restart, follow a connecting runtime to `ready` or `error`, record its status events, and close.
 */
export class SessionLifecycle {
  readonly #core: HostCore;

  constructor(core: HostCore) {
    this.#core = core;
  }

  /** Sessions starting or ready in this process. */
  get openCount(): number {
    let n = 0;
    for (const live of this.#core.live.values()) if (!live.closing) n++;
    return n;
  }

  /** See `AgentHost.createSession`. */
  async create(request: CreateSessionInput): Promise<SessionView> {
    const core = this.#core;
    core.assertOpen();
    const open = this.openCount + core.pending.size;
    const { maxSessions } = core.config.sessions;
    if (open >= maxSessions) {
      throw new RuntimeError(
        "RATE_LIMITED",
        `${open} sessions are open, the limit (sessions.maxSessions) is ${maxSessions}; delete a session or raise the limit.`,
      );
    }
    const { id: given, labels = {}, ...overrides } = request;
    const id = given ?? newId("s");
    if (core.pending.has(id) || core.store.getSession(id)) {
      throw new RuntimeError(
        "ALREADY_EXISTS",
        `A session with id "${id}" already exists; pick another id or omit it.`,
      );
    }
    core.pending.add(id);
    try {
      return await this.#start(id, labels, overrides);
    } finally {
      core.pending.delete(id);
    }
  }

  async #start(
    id: string,
    labels: Record<string, string>,
    overrides: Omit<CreateSessionInput, "id" | "labels">,
  ): Promise<SessionView> {
    const core = this.#core;
    const live = newLiveSession(id, noopRedactor);
    // The provider validates the overrides against its backend (INVALID_ARGUMENT, UNSUPPORTED naming the field).
    const runtime = await core.plugins.provider.create({
      sessionId: id,
      ...overrides,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    });
    live.runtime = runtime;
    logSandboxLifecycle(runtime, core.logger, { sessionId: id, backend: core.backend });
    // Status events before the record exists are kept and replayed after the `session` event.
    const early: StatusEvent[] = [];
    let recording = false;
    live.unsubscribeStatus = runtime.onStatus((event) => {
      if (recording) this.#onStatus(live, event);
      else early.push(event);
    });
    const connecting = runtime.connect({ signal: live.abort.signal });
    const outcome = await pastReservation(runtime, connecting);
    const discard = async () => {
      live.unsubscribeStatus?.();
      live.abort.abort();
      await runtime.close().catch(() => undefined);
    };
    if (isRuntimeError(outcome, "BUDGET_EXCEEDED")) {
      await discard();
      throw budgetRefusal(id, outcome);
    }
    let record: SessionRecord;
    try {
      core.assertOpen();
      live.redactor = await this.#redactorOf(id, runtime);
      core.assertOpen();
      record = core.store.insertSession({
        id,
        backend: core.backend,
        labels: live.redactor.redactDeep(labels),
        overrides: live.redactor.redactDeep(overrides),
        nowMs: core.now(),
      });
    } catch (err) {
      await discard();
      throw err;
    }
    core.trackRedactor(id, live.redactor);
    const leaseId = leaseIdOf(runtime);
    if (leaseId) core.store.setLeaseId(id, leaseId);
    core.live.set(id, live);
    core.emit(id, "session", { session: core.sessionView(record) });
    recording = true;
    for (const event of early) this.#onStatus(live, event);
    this.#follow(
      live,
      connecting.then(() => runtime),
      "create",
    );
    return core.sessionView(record);
  }

  /**
   * The redactor of what the host keeps about a new session. A runtime that shows its redactor (runtime-core's
   * `BaseRuntime`) resolved the session's secrets through the secrets plugin before it started the sandbox, so
   * the plugin's live redactor knows them; for one that does not, the host resolves them itself.
   */
  async #redactorOf(sessionId: string, runtime: Runtime): Promise<Redactor> {
    const { redactor: shared, secrets } = this.#core.plugins;
    const own = runtimeRedactor(runtime);
    if (own) return shared ?? own;
    if (!secrets) return shared ?? noopRedactor;
    const resolved = await secrets.resolve({ sessionId });
    return shared ?? resolved.redactor;
  }

  /** Re-attaches a session to its sandbox after a restart; `redactor` holds its secrets, resolved at open. */
  attach(id: string, handle: RuntimeHandle, redactor: Redactor): LiveSession {
    const core = this.#core;
    const live = newLiveSession(id, redactor);
    core.trackRedactor(id, redactor);
    core.live.set(id, live);
    const connecting = (async () => {
      const runtime = await core.plugins.provider.attach(handle);
      live.runtime = runtime;
      logSandboxLifecycle(runtime, core.logger, { sessionId: id, backend: core.backend, mode: "attach" });
      // The live redactor knows the session's secrets (resolved at open); without one, add the runtime's.
      if (redactor !== core.plugins.redactor) {
        live.redactor = combineRedactors(runtimeRedactor(runtime), redactor);
        core.trackRedactor(id, live.redactor);
      }
      live.unsubscribeStatus = runtime.onStatus((event) => this.#onStatus(live, event));
      await runtime.connect({ signal: live.abort.signal });
      return runtime;
    })();
    this.#follow(live, connecting, "attach");
    return live;
  }

  /** Records where a connecting runtime ends up: `ready` (with its handle), or `error` (lease settled if lost). */
  #follow(live: LiveSession, connecting: Promise<Runtime>, mode: "create" | "attach"): void {
    const core = this.#core;
    const id = live.id;
    live.ready = (async () => {
      const runtime = await connecting;
      if (live.closing || core.closed) return runtime;
      const handle = runtime.capabilities.attach ? runtime.handle() : undefined;
      // The handle is stored: labels or env given with the session may quote a secret (the session key in it
      // is a credential of ours, and stays).
      if (handle) core.store.setHandle(id, live.redactor.redactDeep(handle), core.now());
      const leaseId = leaseIdOf(runtime, handle);
      if (leaseId) core.store.setLeaseId(id, leaseId);
      core.store.setRuntimeStatus(id, runtime.status, core.now());
      core.setSessionState(id, "ready", { error: null });
      return runtime;
    })();
    live.settled = live.ready.then(
      () => undefined,
      async (err: unknown) => {
        if (live.closing || core.closed) return;
        const info = errorInfo(err, live.redactor);
        if (mode === "attach") {
          info.message = `The sandbox did not survive the host restart and cannot be re-attached: ${info.message} Delete this session and create a new one.`;
        }
        core.logger.warn("session failed to start", { sessionId: id, code: info.code });
        const handle = core.store.handleOf(id);
        core.store.setHandle(id, null, core.now());
        core.setSessionState(id, "error", { error: info });
        core.live.delete(id);
        core.forgetRedactor(id);
        void live.runtime?.close().catch(() => undefined);
        // A runtime that failed to re-attach holds no lease: the lost sandbox's lease is settled here.
        if (mode === "attach") await core.settleLostLease(id, handle, "sandbox lost while the host was down");
      },
    );
    live.chain = live.settled;
  }

  #onStatus(live: LiveSession, raw: StatusEvent): void {
    const core = this.#core;
    if (core.closed) return;
    const event = live.redactor.isEmpty ? raw : { ...raw, message: live.redactor.redact(raw.message) };
    core.store.setRuntimeStatus(live.id, event.status, event.at);
    core.emit(live.id, "status", { ...event });
    const gone =
      event.status === RuntimeStatus.ERROR_RUNTIME_DISCONNECTED ||
      event.status === RuntimeStatus.BUDGET_EXCEEDED;
    if (gone && !live.closing && core.store.getSession(live.id)?.state === "ready") {
      const code = event.status === RuntimeStatus.BUDGET_EXCEEDED ? "BUDGET_EXCEEDED" : "DISCONNECTED";
      core.store.setHandle(live.id, null, core.now());
      core.setSessionState(live.id, "error", {
        error: { code, message: `${event.message} Delete this session and create a new one.` },
      });
    }
  }

  /** See `AgentHost.deleteSession`. */
  delete(id: string): Promise<SessionView> {
    const core = this.#core;
    const record = core.requireSession(id);
    if (record.state === "closed") return Promise.resolve(core.sessionView(record));
    const live = core.live.get(id);
    if (live?.closing) return live.closing;
    const closing = this.#close(id, live);
    if (live) live.closing = closing;
    return closing;
  }

  async #close(id: string, live: LiveSession | undefined): Promise<SessionView> {
    const core = this.#core;
    core.setSessionState(id, "closing", { error: core.store.getSession(id)?.error ?? null });
    for (const task of core.store.queuedTasks(id)) {
      const error = { code: "CANCELLED", message: "The session was deleted before this action started." };
      if (core.store.finishTask(task.id, "cancelled", core.now(), { error })) core.taskChanged(task.id);
    }
    if (live) {
      live.abort.abort();
      await live.ready.catch(() => undefined);
      try {
        await live.runtime?.close();
      } catch (err) {
        core.logger.warn("closing the runtime failed", { sessionId: id, code: errorInfo(err).code });
      }
      live.unsubscribeStatus?.();
      await live.chain;
      core.live.delete(id);
    } else {
      await this.#closeDetached(id);
    }
    core.forgetRedactor(id);
    core.store.setHandle(id, null, core.now());
    core.setSessionState(id, "closed", { error: core.store.getSession(id)?.error ?? null });
    return core.sessionView(core.requireSession(id));
  }

  /**
   * Closes a session no runtime in this process holds. A sandbox that still runs (its handle was kept) is
   * re-attached and stopped, which settles its lease; a lost one has its lease settled here. A session of
   * another backend is left to that backend.
   */
  async #closeDetached(id: string): Promise<void> {
    const core = this.#core;
    const handle = core.store.handleOf(id);
    if (handle && handle.backend !== core.backend) {
      // Its sandbox may still run on the other backend: its lease stays with it (and cost-guard's sweeper).
      core.logger.warn("deleted a session of another backend without stopping its sandbox", {
        sessionId: id,
        backend: handle.backend,
      });
      return;
    }
    if (handle) {
      try {
        const runtime = await core.plugins.provider.attach(handle);
        try {
          await runtime.connect();
        } finally {
          await runtime.close();
        }
      } catch (err) {
        core.logger.info("the sandbox of a deleted session was gone", {
          sessionId: id,
          code: errorInfo(err).code,
        });
      }
    }
    await core.settleLostLease(id, handle, "session deleted; its sandbox was gone");
  }
}
