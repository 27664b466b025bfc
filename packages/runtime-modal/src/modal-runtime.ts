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
import type { App, Image, Sandbox, SandboxCreateParams, Secret } from "modal";
import { sleep, toModalRuntimeError, withRetry } from "./errors.js";
import type { ResolvedImage } from "./image.js";
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

/** Fields runtime-modal keeps in a handle's `data` (besides core's sandboxId, caCertPem, lease...). */
export interface ModalHandleData {
  sandboxId: string;
  appName: string;
  environment?: string;
  /** The sandbox's name in the App (absent for V2 sandboxes, which have none). */
  sandboxName?: string;
}

/** Fast liveness checks while the sandbox starts, so a crash fails connect() at once. */
const STARTUP_POLL_MS = 250;

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
      startupTimeoutMs: o.startupTimeoutMs,
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
    const app = await svc.app();
    if (!svc.imageReady(this.#image))
      this.emitStatus(RuntimeStatus.BUILDING_RUNTIME, "building the Modal image");
    const image = await svc.builtImage(app, this.#image);
    const deadline = Date.now() + o.startupTimeoutMs;
    this.emitStatus(RuntimeStatus.STARTING_RUNTIME, "creating the Modal sandbox");

    const nonce = newKeyNonce();
    const sessionApiKey = o.sessionKeySecret
      ? derivedSessionKey(o.sessionKeySecret.reveal(), nonce)
      : randomSessionKey();
    const secrets: Secret[] = [];
    // The key and resolved secret values travel as an ephemeral Secret, not as plain sandbox env.
    const secretEnv = { ...(request.secrets?.env ?? {}), SESSION_API_KEY: sessionApiKey };
    secrets.push(
      await withRetry(() => client.secrets.fromObject(secretEnv), {
        step: "secret",
        what: "Creating the sandbox's ephemeral Secret failed",
        retry: o.retry,
      }),
    );
    // Modal named secrets come as runtime-core secret references (from any secrets plugin); Modal injects them.
    for (const ref of modalSecretReferences(request.secrets)) {
      secrets.push(
        await withRetry(
          () =>
            client.secrets.fromName(ref.name, {
              requiredKeys: [...(ref.requiredKeys ?? [])],
              ...(ref.environment ? { environment: ref.environment } : {}),
            }),
          { step: "secret", what: `Looking up the Modal Secret "${ref.name}" failed`, retry: o.retry },
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

    const sb = await this.#create(app, image, params, nonce, deadline, request.signal);
    this.#sb = sb;
    this.#followOutput(sb);
    try {
      const remaining = Math.max(1000, deadline - Date.now());
      const tunnels = await withRetry(() => sb.tunnels(remaining), {
        step: "tunnels",
        what: `Getting the tunnels of sandbox ${sb.sandboxId} failed`,
        retry: o.retry,
        deadline,
      });
      const server = tunnels[img.port];
      if (!server)
        throw new RuntimeError(
          "INTERNAL",
          `Modal returned no tunnel for port ${img.port} of sandbox ${sb.sandboxId}`,
        );
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
    const tail = this.#output;
    const sandboxId = this.#sb?.sandboxId;
    const hint = this.#svc.emulatorHint;
    // No sandbox to read: on V1 a start command that exits before Modal schedules the sandbox fails the create
    // itself (the SDK's ConflictError, "has already finished"). The emulator hint still applies.
    if (!tail) {
      if (!hint) return error;
      return new RuntimeError(error.code, `${error.message} ${hint}`, {
        cause: error,
        details: error.details,
      });
    }
    // A sandbox that ended has (nearly) all its output in flight; a running one had time to write.
    await tail.settled(this.#gone ? OUTPUT_DRAIN_MS : 250);
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

  /**
   * Creates the sandbox. Transient failures are retried: the sandbox's unique name makes a retry safe, since a
   * create that Modal committed before failing comes back as ALREADY_EXISTS and is adopted when its nonce tag is
   * ours. A V2 sandbox has no name, so its create is not retried here (only the SDK's own retries apply): a
   * retry could start a second sandbox. A create still running at the deadline is terminated when it returns.
   */
  async #create(
    app: App,
    image: Image,
    params: SandboxCreateParams,
    nonce: string,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<Sandbox> {
    const svc = this.#svc;
    const retry = svc.options.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#withinDeadline(svc.client.sandboxes.create(app, image, params), deadline, signal);
      } catch (raw) {
        const err = toModalRuntimeError(raw, "create", "Creating the Modal sandbox failed");
        if (err.code === "ALREADY_EXISTS" && attempt > 1) {
          const adopted = await this.#adopt(params.name ?? "", nonce);
          if (adopted) return adopted;
        }
        if (err.code === "ALREADY_EXISTS") {
          throw new RuntimeError(
            "ALREADY_EXISTS",
            `A sandbox for session "${this.sessionId}" is already running in the Modal App "${svc.options.appName}" (name ${params.name}); attach to it (provider.attachSession) or close it first.`,
            { cause: err },
          );
        }
        const delay = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
        if (
          (err.code !== "UNAVAILABLE" && err.code !== "RATE_LIMITED") ||
          params.name === undefined ||
          attempt >= retry.maxAttempts ||
          Date.now() + delay > deadline
        )
          throw err;
        this.logger.warn("creating the Modal sandbox failed; retrying", {
          sessionId: this.sessionId,
          attempt,
          code: err.code,
        });
        await sleep(delay, signal);
      }
    }
  }

  async #adopt(name: string, nonce: string): Promise<Sandbox | undefined> {
    const svc = this.#svc;
    try {
      const sb = await svc.client.sandboxes.fromName(
        svc.options.appName,
        name,
        svc.options.environment ? { environment: svc.options.environment } : {},
      );
      const tags = await sb.getTags();
      return tags[TAGS.keyNonce] === nonce ? sb : undefined;
    } catch {
      return undefined;
    }
  }

  #withinDeadline(pending: Promise<Sandbox>, deadline: number, signal?: AbortSignal): Promise<Sandbox> {
    return new Promise<Sandbox>((resolve, reject) => {
      let late = false;
      const giveUp = (err: RuntimeError) => {
        late = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      };
      const timer = setTimeout(
        () =>
          giveUp(
            new RuntimeError(
              "TIMEOUT",
              `Modal did not create the sandbox within startupTimeoutMs (${this.#svc.options.startupTimeoutMs} ms); raise startupTimeoutMs or retry.`,
            ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      const onAbort = () =>
        giveUp(new RuntimeError("CANCELLED", "connect() was aborted while the sandbox was being created"));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      pending.then(
        (sb) => {
          if (!late) {
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            resolve(sb);
          } else {
            // Modal committed the sandbox after we gave up on it: stop it so nothing is left running.
            void this.#terminate(sb, "created after the deadline");
          }
        },
        (err: unknown) => {
          if (late) return;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
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

  #startWatching(): void {
    this.#stopWatching();
    const interval = () =>
      this.status === RuntimeStatus.READY
        ? this.#svc.options.livenessIntervalMs
        : Math.min(STARTUP_POLL_MS, this.#svc.options.livenessIntervalMs);
    const tick = async () => {
      await this.#check();
      if (!this.#gone && !this.#destroying && this.#sb) {
        this.#watch = setTimeout(tick, interval());
        this.#watch.unref();
      }
    };
    this.#watch = setTimeout(tick, interval());
    this.#watch.unref();
  }

  #stopWatching(): void {
    if (this.#watch) clearTimeout(this.#watch);
    this.#watch = undefined;
  }

  async #check(): Promise<void> {
    const sb = this.#sb;
    if (!sb || this.#gone || this.#destroying) return;
    let code: number | null;
    try {
      code = await sb.poll();
    } catch (err) {
      const e = toModalRuntimeError(err, "poll", `Checking sandbox ${sb.sandboxId} failed`);
      if (e.code !== "NOT_FOUND") {
        this.logger.debug("modal liveness check failed; will retry", {
          sandboxId: sb.sandboxId,
          code: e.code,
        });
        return;
      }
      code = -1;
    }
    if (code === null || this.#destroying || this.#gone) return;
    // Before it was ready, the reason is read with the sandbox's last output: let it arrive first.
    if (!this.#everReady) await this.#output?.settled(OUTPUT_DRAIN_MS);
    if (this.#destroying || this.#gone) return;
    this.#gone = code === -1 ? "Modal no longer knows the sandbox" : endReason(code, !this.#everReady);
    this.#stopWatching();
    // deathReason() now says gone: the base class settles the lease at once (its LeaseKeeper settles once).
    this.markDisconnected(this.#gone);
  }
}
