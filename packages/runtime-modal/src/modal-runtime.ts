// Long (about 540 lines) for one reason: it is one sandbox's lifecycle (provision, reattach, rebind, watch,
// terminate, explain a failed start), whose steps share the runtime's private state. What stands alone lives
// beside it: the start's deadlines (deadline.ts), create and tunnels (startup.ts), the image build
// (image-build.ts), the shared liveness poll (liveness.ts) and the output tail (output-tail.ts).
import {
  BaseRuntime,
  type PluginContext,
  type ProvisionedSandbox,
  type ProvisionRequest,
  type ResolvedSessionOverrides,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  RuntimeStatus,
  type SandboxCostSpec,
} from "@agent-runtime/runtime-core";
import type { Sandbox, SandboxCreateParams, Secret } from "modal";
import { Deadline, startupTimeouts } from "./deadline.js";
import { toModalRuntimeError, withRetry } from "./errors.js";
import type { ResolvedImage } from "./image.js";
import { isModalImageBuildError } from "./image-build.js";
import {
  derivedSessionKey,
  MANAGED_BY,
  newKeyNonce,
  randomSessionKey,
  sandboxNameFor,
  TAGS,
  tagIssues,
} from "./naming.js";
import type { ResolvedModalRuntimeOptions } from "./options.js";
import { SandboxOutputTail } from "./output-tail.js";
import { modalSecretReferences } from "./secret-references.js";
import type { ModalServices } from "./services.js";
import { type ModalSandboxShape, sandboxApiOf } from "./shape.js";
import { createSandbox, waitForTunnels } from "./startup.js";

/** Fields runtime-modal keeps in a handle's `data` (besides core's sandboxId, caCertPem, lease...). */
export interface ModalHandleData {
  sandboxId: string;
  appName: string;
  environment?: string;
  /** The sandbox's name in the App (absent for V2 sandboxes, which have none). */
  sandboxName?: string;
}

/** Fast liveness checks while the sandbox starts, so a crash fails connect() at once: 250 ms, growing to 2 s. */
const STARTUP_POLL_MS = 250;
const STARTUP_POLL_MAX_MS = 2000;

const ceilSeconds = (ms: number): number => Math.ceil(ms / 1000) * 1000;

/** How long a failed start waits for the last output of a sandbox that ended. */
const OUTPUT_DRAIN_MS = 2000;

/** Why a sandbox ended, from the exit code Modal's `poll()` reports; `starting` before it was ever ready. */
function endReason(code: number, starting = false): string {
  if (code === 124) return "Modal ended the sandbox at its timeoutMs (exit code 124)";
  if (code === 137) return "the sandbox was terminated (exit code 137)";
  if (starting) return `its start command exited with code ${code} (or Modal evicted the sandbox)`;
  return `the sandbox stopped (exit code ${code}: the server exited, the idle timeout passed, or Modal evicted it)`;
}

/** One Modal sandbox running the action server, reached through an encrypted tunnel with a fresh session key. */
export class ModalRuntime extends BaseRuntime {
  readonly #svc: ModalServices;
  /** Set for a warm-pool sandbox until it is handed out: its pool tag's value and its name. */
  #pool: { tag: string; name: string } | undefined;
  #sb: Sandbox | undefined;
  #gone: string | undefined;
  #watch: NodeJS.Timeout | undefined;
  /** Stops the provider's shared liveness poll from watching this sandbox. */
  #unwatch: (() => void) | undefined;
  #destroying = false;
  #retag: Promise<void> | undefined;
  #everReady = false;
  #warmed = false;
  /** The sandbox's last output lines while it starts (dropped once it is ready). */
  #output: SandboxOutputTail | undefined;
  /** The provider's options with this session's overrides applied (resources, image, env, tags). */
  readonly #options: ResolvedModalRuntimeOptions;
  /** This sandbox's image (the provider's unless the session overrides it). */
  readonly #image: ResolvedImage;

  constructor(init: {
    sessionId: string;
    services: ModalServices;
    capabilities: RuntimeCapabilities;
    context: PluginContext;
    attachTo?: RuntimeHandle;
    /** Set for warm-pool sandboxes: the pool tag's value (on the sandbox until handed out) and the sandbox's name. */
    pool?: { tag: string; name: string };
    /** The sandbox's shape when a session overrides the provider's options (see `resolveSandboxShape`). */
    shape?: Pick<ModalSandboxShape, "options" | "image">;
    /** The session's overrides as accepted (kept in the handle; `userId` scopes the cost lease). */
    overrides?: ResolvedSessionOverrides;
  }) {
    const o = init.shape?.options ?? init.services.options;
    super({
      backend: "modal",
      sessionId: init.sessionId,
      capabilities: init.capabilities,
      context: init.context,
      // The readiness deadline; provisioning has its own (see provision() and startupTimeouts).
      startupTimeoutMs: startupTimeouts(o).readinessMs,
      keepAlive: o.keepAlive,
      lifetimeMs: ceilSeconds(o.timeoutMs),
      defaultActionTimeoutMs: o.defaultActionTimeoutMs,
      ...(init.attachTo ? { attachTo: init.attachTo } : {}),
      ...(init.overrides ? { overrides: init.overrides } : {}),
    });
    this.#svc = init.services;
    this.#options = o;
    this.#image = init.shape?.image ?? init.services.image;
    this.#pool = init.pool;
    this.onStatus((event) => {
      if (event.status !== RuntimeStatus.READY) return;
      this.#everReady = true;
      // Only a failed start reports the output: stop streaming it once the server answers.
      this.#output?.stop();
      this.#output = undefined;
    });
  }

  /** Modal's id of the sandbox, once created or attached. */
  get sandboxId(): string | undefined {
    return this.#sb?.sandboxId;
  }

  /** Settles when the tags of a pooled sandbox handed to a session are updated. */
  get pendingRetag(): Promise<void> | undefined {
    return this.#retag;
  }

  /**
   * Connects; a warm-pool sandbox also runs one hidden no-op command, so the server's shell is started before
   * the sandbox is handed out and the session's first action does not pay for it.
   */
  override async connect(options: { signal?: AbortSignal } = {}): Promise<void> {
    await super.connect(options);
    if (this.#pool !== undefined && !this.#warmed) {
      this.#warmed = true;
      await this.runCommand("true", { hidden: true });
    }
  }

  protected override costSpec(): SandboxCostSpec {
    const o = this.#options;
    return {
      provider: "modal",
      cpuCores: o.cpuCores,
      memoryMiB: o.memoryMiB,
      ...(o.cpuLimitCores !== undefined ? { cpuLimitCores: o.cpuLimitCores } : {}),
      ...(o.memoryLimitMiB !== undefined ? { memoryLimitMiB: o.memoryLimitMiB } : {}),
      ...(o.gpu !== undefined ? { gpu: o.gpu } : {}),
      ...(o.region !== undefined ? { region: o.region } : {}),
    };
  }

  protected override deathReason(): string | undefined {
    return this.#gone;
  }

  protected async provision(request: ProvisionRequest): Promise<ProvisionedSandbox> {
    const svc = this.#svc;
    const o = this.#options;
    const client = svc.client;
    // Every step runs within the start deadline, except the image build, which has its own (imageBuildTimeoutMs).
    const deadline = new Deadline(startupTimeouts(o).provisionMs, "startupTimeoutMs", request.signal);
    const app = await deadline
      .race(svc.app(), "app", `Modal did not answer the lookup of the App "${o.appName}"`)
      .catch((err: unknown) => {
        // A lookup stuck past the deadline is not shared with the next start.
        if (err instanceof RuntimeError && err.code === "TIMEOUT") svc.forgetApp();
        throw err;
      });
    if (!svc.imageReady(this.#image))
      this.emitStatus(RuntimeStatus.BUILDING_RUNTIME, "building the Modal image");
    const buildStarted = Date.now();
    const image = await svc.builtImage(app, this.#image);
    deadline.extend(Date.now() - buildStarted);
    this.emitStatus(RuntimeStatus.STARTING_RUNTIME, "creating the Modal sandbox");

    const nonce = newKeyNonce();
    const sessionApiKey = o.sessionKeySecret
      ? derivedSessionKey(o.sessionKeySecret.reveal(), nonce)
      : randomSessionKey();
    const secrets: Secret[] = [];
    // The key and resolved secret values travel as an ephemeral Secret, not as plain sandbox env.
    const secretEnv = { ...(request.secrets?.env ?? {}), SESSION_API_KEY: sessionApiKey };
    secrets.push(
      await deadline.run(() => client.secrets.fromObject(secretEnv), {
        step: "secret",
        what: "Creating the sandbox's ephemeral Secret failed",
        late: "Modal did not create the sandbox's ephemeral Secret",
        retry: o.retry,
      }),
    );
    // Modal named secrets come as runtime-core secret references (from any secrets plugin); Modal injects them.
    for (const ref of modalSecretReferences(request.secrets)) {
      secrets.push(
        await deadline.run(
          () =>
            client.secrets.fromName(ref.name, {
              requiredKeys: [...(ref.requiredKeys ?? [])],
              ...(ref.environment ? { environment: ref.environment } : {}),
            }),
          {
            step: "secret",
            what: `Looking up the Modal Secret "${ref.name}" failed`,
            late: `Modal did not answer the lookup of the Secret "${ref.name}"`,
            retry: o.retry,
          },
        ),
      );
    }

    const img = this.#image;
    // V2 sandboxes take no name, no tags and no idle timeout (see the sandboxApi option): none are sent.
    const v1 = sandboxApiOf(o) === "v1";
    const name = this.#pool?.name ?? sandboxNameFor(this.sessionId);
    const tags: Record<string, string> = {
      ...o.tags,
      [TAGS.managedBy]: MANAGED_BY,
      [TAGS.session]: this.sessionId,
      [TAGS.keyNonce]: nonce,
      ...(request.leaseId ? { [TAGS.lease]: request.leaseId } : {}),
      ...(this.#pool ? { [TAGS.pool]: this.#pool.tag } : {}),
    };
    const tooLong = v1 ? tagIssues(tags) : [];
    if (tooLong.length > 0)
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `The sandbox's tags do not fit Modal's limits:\n  ${tooLong.map((t) => `${t.key}: ${t.message}`).join("\n  ")}`,
      );
    const ports = [
      img.port,
      ...(o.vscodePort !== undefined && o.vscodePort !== img.port ? [o.vscodePort] : []),
    ];
    const params: SandboxCreateParams = {
      command: img.argv,
      ...(img.cwd ? { workdir: img.cwd } : {}),
      env: {
        ...o.env,
        NO_CHANGE_TIMEOUT_SECONDS: String(o.noChangeTimeoutSeconds),
        ...(o.vscodePort !== undefined ? { VSCODE_PORT: String(o.vscodePort) } : {}),
      },
      secrets,
      encryptedPorts: ports,
      timeoutMs: ceilSeconds(o.timeoutMs),
      ...(v1 && o.idleTimeoutMs !== undefined ? { idleTimeoutMs: ceilSeconds(o.idleTimeoutMs) } : {}),
      cpu: o.cpuCores,
      memoryMiB: o.memoryMiB,
      ...(o.cpuLimitCores !== undefined ? { cpuLimit: o.cpuLimitCores } : {}),
      ...(o.memoryLimitMiB !== undefined ? { memoryLimitMiB: o.memoryLimitMiB } : {}),
      ...(o.gpu !== undefined ? { gpu: o.gpu } : {}),
      ...(o.region !== undefined ? { regions: [o.region] } : {}),
      ...(v1 ? { name, tags } : {}),
    };

    const sb = await createSandbox(
      {
        client,
        appName: o.appName,
        environment: o.environment,
        retry: o.retry,
        logger: this.logger,
        sessionId: this.sessionId,
        terminate: (late, reason) =>
          this.#terminate(late, reason).catch((err: unknown) =>
            this.logger.warn("terminating a Modal sandbox failed", {
              sandboxId: late.sandboxId,
              error: String(err),
            }),
          ),
      },
      app,
      image,
      params,
      nonce,
      deadline,
    );
    this.#sb = sb;
    this.#followOutput(sb);
    try {
      const tunnels = await waitForTunnels(sb, deadline, o.retry);
      const server = tunnels[img.port];
      if (!server) {
        // Modal's V1 SandboxGetTunnels answers a finished sandbox with no tunnels: say that it ended, and why.
        const code = await sb.poll().catch(() => null);
        if (code !== null) {
          this.#gone = endReason(code, true);
          throw new RuntimeError(
            "DISCONNECTED",
            `The sandbox stopped before its server was ready: ${this.#gone}`,
          );
        }
        throw new RuntimeError(
          "INTERNAL",
          `Modal returned no tunnel for port ${img.port} of sandbox ${sb.sandboxId}`,
        );
      }
      const vscode = o.vscodePort !== undefined ? tunnels[o.vscodePort] : undefined;
      this.#startWatching();
      const data: ModalHandleData = {
        sandboxId: sb.sandboxId,
        appName: o.appName,
        ...(v1 ? { sandboxName: name } : {}),
        ...(o.environment ? { environment: o.environment } : {}),
      };
      return {
        sandboxId: sb.sandboxId,
        url: server.url,
        sessionApiKey,
        workspaceDir: img.workspaceDir,
        ...(o.caCertPem ? { caCertPem: o.caCertPem } : {}),
        ...(vscode ? { vscodeBaseUrl: vscode.url } : {}),
        data: { ...data },
      };
    } catch (err) {
      // The base class destroys only what provision() returned: stop this sandbox here.
      await this.#terminate(sb, "start failed");
      throw toModalRuntimeError(err, "tunnels", "Starting the Modal sandbox failed");
    }
  }

  /** Starts keeping the sandbox's last stdout/stderr lines, for {@link explainStartFailure}. */
  #followOutput(sb: Sandbox): void {
    this.#output?.stop();
    try {
      this.#output = new SandboxOutputTail({ stdout: sb.stdout, stderr: sb.stderr }, this.logger);
    } catch (err) {
      this.#output = undefined;
      this.logger.debug("cannot read the sandbox's output", { sandboxId: sb.sandboxId, error: String(err) });
    }
  }

  /**
   * A failed start carries the sandbox's last output lines (redacted), in the message and in
   * `details.output`, and against modal-emulator a hint when the image's server cannot exist there.
   */
  protected override async explainStartFailure(error: RuntimeError): Promise<RuntimeError> {
    let tail = this.#output;
    let sandboxId = this.#sb?.sandboxId;
    const hint = this.#svc.emulatorHint;
    // On V1 a start command that exits before Modal schedules the sandbox fails the create itself (the SDK's
    // ConflictError names the sandbox): its output is still kept by Modal, read it by id.
    const finished = tail ? undefined : /\b(sb-[A-Za-z0-9]+) has already finished\b/.exec(error.message)?.[1];
    if (finished) {
      try {
        const sb = await this.#svc.client.sandboxes.fromId(finished);
        tail = new SandboxOutputTail({ stdout: sb.stdout, stderr: sb.stderr }, this.logger);
        sandboxId = finished;
      } catch (err) {
        this.logger.debug("cannot read the finished sandbox's output", {
          sandboxId: finished,
          error: String(err),
        });
      }
    }
    // No sandbox to read. The emulator hint still applies.
    if (!tail) {
      // A failed image build is not about the server command: the hint would mislead.
      if (!hint || isModalImageBuildError(error)) return error;
      return new RuntimeError(error.code, `${error.message} ${hint}`, {
        cause: error,
        details: error.details,
      });
    }
    // A sandbox that ended has (nearly) all its output in flight; a running one had time to write.
    await tail.settled(this.#gone || finished ? OUTPUT_DRAIN_MS : 250);
    tail.stop();
    this.#output = undefined;
    const output = tail.lines(this.redactor);
    if (output.length === 0 && !hint) return error;
    const shown = output.length
      ? `\nLast output of sandbox ${sandboxId} (stdout and stderr, last ${output.length} lines):\n${output.map((l) => `  | ${l}`).join("\n")}`
      : `\nSandbox ${sandboxId} wrote nothing to stdout or stderr.`;
    return new RuntimeError(error.code, `${error.message}${hint ? ` ${hint}` : ""}${shown}`, {
      cause: error,
      details: { ...error.details, ...(sandboxId ? { sandboxId } : {}), output },
    });
  }

  async #terminate(sb: Sandbox, reason: string): Promise<void> {
    try {
      // wait: resolve once Modal reports the sandbox finished, so "closed" means "nothing left running".
      await withRetry(() => sb.terminate({ wait: true }), {
        step: "terminate",
        what: `Terminating sandbox ${sb.sandboxId} failed`,
        retry: this.#svc.options.retry,
      });
      this.logger.debug("modal sandbox terminated", { sandboxId: sb.sandboxId, reason });
    } catch (err) {
      const e = toModalRuntimeError(err, "terminate", `Terminating sandbox ${sb.sandboxId} failed`);
      // Already gone is fine; anything else is reported to the caller (the lease tag lets the sweeper find it).
      if (e.code !== "NOT_FOUND" && e.code !== "FAILED_PRECONDITION") throw e;
    }
  }

  protected async destroy(sandbox: ProvisionedSandbox | undefined, reason: string): Promise<void> {
    this.#destroying = true;
    this.#stopWatching();
    this.#output?.stop();
    const sb =
      this.#sb ??
      (sandbox?.sandboxId
        ? await this.#svc.client.sandboxes.fromId(sandbox.sandboxId).catch(() => undefined)
        : undefined);
    if (sb) await this.#terminate(sb, reason);
  }

  protected override async reattach(handle: RuntimeHandle): Promise<ProvisionedSandbox> {
    const sandboxId = handle.data.sandboxId;
    if (typeof sandboxId !== "string" || sandboxId === "") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        "handle.data.sandboxId: not a runtime-modal handle (the sandbox id is missing)",
      );
    }
    const svc = this.#svc;
    const gone = (why: string, cause?: unknown) =>
      new RuntimeError(
        "NOT_FOUND",
        `The Modal sandbox ${sandboxId} of session ${handle.sessionId} is not running any more (${why}); create a new runtime.`,
        { cause },
      );
    let sb: Sandbox;
    let code: number | null;
    try {
      // fromId does not check that the sandbox exists: poll() asks Modal.
      sb = await svc.client.sandboxes.fromId(sandboxId);
      code = await withRetry(() => sb.poll(), {
        step: "poll",
        what: `Checking sandbox ${sandboxId} failed`,
        retry: svc.options.retry,
      });
    } catch (err) {
      const e = toModalRuntimeError(err, "poll", `Checking sandbox ${sandboxId} failed`);
      if (e.code === "NOT_FOUND") throw gone("Modal does not know it", e);
      throw e;
    }
    if (code !== null) throw gone(endReason(code));
    const provisioned = await super.reattach(handle);
    this.#sb = sb;
    this.#startWatching();
    return provisioned;
  }

  override rebind(sessionId: string, overrides?: ResolvedSessionOverrides): void {
    super.rebind(sessionId, overrides);
    const sb = this.#sb;
    if (this.#pool === undefined || !sb) return;
    this.#pool = undefined;
    // The pool tag comes off (so shutdown sweeps skip it) and the session tag names the new owner.
    this.#retag = (async () => {
      try {
        const tags = await withRetry(() => sb.getTags(), {
          step: "tags",
          what: `Reading the tags of ${sb.sandboxId} failed`,
          retry: this.#svc.options.retry,
        });
        delete tags[TAGS.pool];
        tags[TAGS.session] = sessionId;
        Object.assign(tags, overrides?.labels);
        await withRetry(() => sb.setTags(tags), {
          step: "tags",
          what: `Tagging ${sb.sandboxId} failed`,
          retry: this.#svc.options.retry,
        });
      } catch (err) {
        this.logger.warn("could not re-tag a pooled Modal sandbox", {
          sandboxId: sb.sandboxId,
          error: String(err),
        });
      }
    })();
  }

  protected override markDisconnected(reason: string): void {
    super.markDisconnected(reason);
    // A failed call may mean the sandbox ended: find out now rather than at the next liveness check.
    if (!this.#gone && !this.#destroying) void this.#check();
  }

  /** Closed with keepAlive: the sandbox runs on for a later attach, but this object stops watching it. */
  protected override release(): void {
    this.#stopWatching();
    this.#output?.stop();
  }

  /**
   * Watches the sandbox: while it starts, alone (every 250 ms, growing 1.5x to 2 s, so a start command that exits
   * fails connect() at once); once ready, through the provider's one shared poll ({@link LivenessMonitor}), so the
   * calls to Modal do not grow with the number of sandboxes.
   */
  #startWatching(): void {
    this.#stopWatching();
    const svc = this.#svc;
    let delay = Math.min(STARTUP_POLL_MS, svc.options.livenessIntervalMs);
    const tick = async () => {
      this.#watch = undefined;
      const sb = this.#sb;
      if (this.#gone || this.#destroying || !sb) return;
      if (this.status === RuntimeStatus.READY) {
        this.#unwatch = svc.liveness.watch({
          sandboxId: sb.sandboxId,
          poll: () => this.#pollOnce(sb),
          onGone: (code) => void this.#declareGone(code),
        });
        return;
      }
      await this.#check();
      delay = Math.min(STARTUP_POLL_MAX_MS, delay * 1.5);
      if (!this.#gone && !this.#destroying && this.#sb && !this.#unwatch) {
        this.#watch = setTimeout(tick, delay);
        this.#watch.unref();
      }
    };
    this.#watch = setTimeout(tick, delay);
    this.#watch.unref();
  }

  #stopWatching(): void {
    if (this.#watch) clearTimeout(this.#watch);
    this.#watch = undefined;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Modal's word on the sandbox: `null` while it runs, else its exit code (`-1`: Modal does not know it). */
  async #pollOnce(sb: Sandbox): Promise<number | null> {
    try {
      return await sb.poll();
    } catch (err) {
      const e = toModalRuntimeError(err, "poll", `Checking sandbox ${sb.sandboxId} failed`);
      if (e.code === "NOT_FOUND") return -1;
      throw e;
    }
  }

  async #check(): Promise<void> {
    const sb = this.#sb;
    if (!sb || this.#gone || this.#destroying) return;
    let code: number | null;
    try {
      code = await this.#pollOnce(sb);
    } catch (err) {
      this.logger.debug("modal liveness check failed; will retry", {
        sandboxId: sb.sandboxId,
        code: err instanceof RuntimeError ? err.code : "INTERNAL",
      });
      return;
    }
    if (code !== null) await this.#declareGone(code);
  }

  /** The sandbox ended with `code` (`-1`: unknown to Modal): the runtime turns disconnected, once. */
  async #declareGone(code: number): Promise<void> {
    if (this.#destroying || this.#gone) return;
    // Before it was ready, the reason is read with the sandbox's last output: let it arrive first.
    if (!this.#everReady) await this.#output?.settled(OUTPUT_DRAIN_MS);
    if (this.#destroying || this.#gone) return;
    this.#gone = code === -1 ? "Modal no longer knows the sandbox" : endReason(code, !this.#everReady);
    this.#stopWatching();
    // deathReason() now says gone: the base class settles the lease at once (its LeaseKeeper settles once).
    this.markDisconnected(this.#gone);
  }
}
