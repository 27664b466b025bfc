import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import {
  type CreateRuntimeInput,
  createPluginInstance,
  definePlugin,
  noopRedactor,
  overridesOf,
  type PluginContext,
  parseCreateRuntimeInput,
  quietLogger,
  type ResolvedSessionOverrides,
  type RuntimeCapabilities,
  RuntimeError,
  type RuntimeHandle,
  type RuntimeProvider,
  resolvePluginOptions,
  type SessionOverrideField,
  WarmPool,
} from "@agent-runtime/runtime-core";
import type { ModalClient, Sandbox } from "modal";
import { createModalClient, emulatorServerCommand, serverUrlOf } from "./client.js";
import { toModalRuntimeError, withRetry } from "./errors.js";
import { resolveImage } from "./image.js";
import { ModalSandboxInventory } from "./inventory.js";
import { type ModalHandleData, ModalRuntime } from "./modal-runtime.js";
import { derivedSessionKey, MAX_TAG_VALUE_LENGTH, sandboxNameFor, TAGS } from "./naming.js";
import {
  MODAL_RENAMED_OPTIONS,
  type ModalRuntimeOptions,
  ModalRuntimeOptionsSchema,
  type ResolvedModalRuntimeOptions,
  validateModalRuntimeOptions,
} from "./options.js";
import { ModalServices } from "./services.js";
import {
  MODAL_V2_OVERRIDE_HINTS,
  type ModalSandboxShape,
  resolveSandboxShape,
  supportedOverridesFor,
} from "./shape.js";

/**
 * Creates Modal runtimes for one configuration (credentials, App, image and resources), with its warm pool.
 * Builds the `ModalClient` once. Implements {@link RuntimeProvider}.
 */
export class ModalRuntimeProvider implements RuntimeProvider {
  readonly backend = "modal";
  readonly capabilities: RuntimeCapabilities;
  /** Value of the pool tag on this provider's pooled sandboxes (swept on close). */
  readonly poolId: string;
  /** runtime-core's `SandboxInventory` for this provider's App (for a cost plugin's orphan sweeper). */
  readonly inventory: ModalSandboxInventory;
  readonly #svc: ModalServices;
  readonly #context: PluginContext;
  readonly #pool: WarmPool<ModalRuntime> | undefined;
  readonly #retags = new Set<Promise<void>>();
  /**
   * Per-session override fields this provider honours (all of them, `labels` and `userId` too; with
   * `sandboxApi: "v2"` not `idleTimeoutMs`, and `labels` only with a GPU).
   */
  readonly supportedOverrides: readonly SessionOverrideField[];
  #closed: Promise<void> | undefined;

  constructor(options: ResolvedModalRuntimeOptions, context: PluginContext) {
    if (options.sandboxApi === "v2" && context.cost) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        "sandboxApi: a cost plugin puts its lease id in the sandbox's tags so an orphan sweep can find the sandbox, and Modal's V2 sandbox API keeps no tags; use sandboxApi \"v1\" (the default) with a cost plugin, or run without one.",
      );
    }
    this.#context = context;
    this.supportedOverrides = supportedOverridesFor(options);
    const client = createModalClient(options, context.logger, context.redactor);
    const emulated = emulatorServerCommand(options, serverUrlOf(client));
    const image = resolveImage(emulated.options);
    this.#svc = new ModalServices({
      client,
      // Against modal-emulator without serverCommand or image, the host's server bundle (see emulatorServerCommand).
      options: emulated.options,
      image,
      logger: context.logger,
      redactor: context.redactor,
      ...(emulated.hint && image.server === "agent-runtime" ? { emulatorHint: emulated.hint } : {}),
    });
    this.inventory = new ModalSandboxInventory(this.#svc);
    this.poolId = `ar-pool-${randomBytes(6).toString("hex")}`;
    this.capabilities = {
      persistentShell: true,
      stdin: true,
      ipython: options.ipython ?? image.server === "openhands",
      gpu: true,
      pause: false,
      attach: true,
      tunnels: true,
      vscode: options.vscodePort !== undefined,
      fileTransfer: true,
      networkIsolation: false,
    };
    if (options.pool.size > 0) {
      let n = 0;
      this.#pool = new WarmPool({
        size: options.pool.size,
        logger: context.logger,
        create: (poolSessionId) =>
          this.#newRuntime(poolSessionId, { pool: { tag: this.poolId, name: `${this.poolId}-${n++}` } }),
      });
      this.#pool.fill();
    }
  }

  /** The parsed options (credentials and the session-key secret show as `[redacted]` when serialized). */
  get options(): ResolvedModalRuntimeOptions {
    return this.#svc.options;
  }

  /** The provider's Modal client (one per provider). */
  get client(): ModalClient {
    return this.#svc.client;
  }

  /** Ready sandboxes in the warm pool. */
  get poolReady(): number {
    return this.#pool?.readyCount ?? 0;
  }

  #newRuntime(
    sessionId: string,
    extra: {
      attachTo?: RuntimeHandle;
      pool?: { tag: string; name: string };
      shape?: ModalSandboxShape;
      overrides?: ResolvedSessionOverrides;
    } = {},
  ): ModalRuntime {
    return new ModalRuntime({
      sessionId,
      services: this.#svc,
      capabilities: this.capabilities,
      context: this.#context,
      ...extra,
    });
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "This Modal runtime provider is closed; create a new one.",
      );
  }

  /**
   * A runtime for `input.sessionId`: a ready one from the warm pool when there is one and the input keeps the
   * provider's shape, else a new (unconnected) one. Every override applies to this sandbox only: `image`, `gpu`,
   * `cpuCores`, `memoryMiB`, `timeoutMs`, `idleTimeoutMs`, `env` (merged over the provider's), `labels` (added
   * to the sandbox's tags) and `userId` (the cost lease's scope). They are validated as the provider's options
   * are (INVALID_ARGUMENT, every issue as `path: message`). A create with overrides that change the sandbox
   * (anything but `labels`), or with a `userId`, bypasses the warm pool.
   */
  async create(input: CreateRuntimeInput): Promise<ModalRuntime> {
    this.#assertOpen();
    const o = this.#svc.options;
    const parsed = parseCreateRuntimeInput(input, {
      backend: "modal",
      supported: this.supportedOverrides,
      ...(o.sandboxApi === "v2" ? { hints: MODAL_V2_OVERRIDE_HINTS } : {}),
    });
    if (o.sandboxApi === "v1" && parsed.sessionId.length > MAX_TAG_VALUE_LENGTH) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `sessionId: ${parsed.sessionId.length} characters; the session id is the value of the sandbox's tag "${TAGS.session}", and Modal tag values hold at most ${MAX_TAG_VALUE_LENGTH}. Use a shorter session id.`,
      );
    }
    const overrides = overridesOf(parsed);
    const shape = resolveSandboxShape(this.#svc, overrides);
    const pooled = shape.poolCompatible ? this.#pool?.acquire(parsed.sessionId, overrides) : undefined;
    if (pooled) {
      const retag = pooled.pendingRetag;
      if (retag) {
        this.#retags.add(retag);
        void retag.finally(() => this.#retags.delete(retag));
      }
      return pooled;
    }
    return this.#newRuntime(parsed.sessionId, { shape, overrides });
  }

  /** Re-attaches to a sandbox from its handle; `connect()` verifies it still runs (NOT_FOUND otherwise). */
  async attach(handle: RuntimeHandle): Promise<ModalRuntime> {
    this.#assertOpen();
    if (handle?.backend !== "modal") {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `handle.backend: expected "modal", got ${JSON.stringify(handle?.backend)}`,
      );
    }
    return this.#newRuntime(handle.sessionId, { attachTo: handle });
  }

  /**
   * Re-attaches by session id, without a stored handle: finds the running sandbox by its name, else by its
   * session tag, and derives its session key from `sessionKeySecret` (required). Throws NOT_FOUND when no
   * sandbox of the App serves the session. `connect()` then verifies the server answers.
   */
  async attachSession(sessionId: string): Promise<ModalRuntime> {
    this.#assertOpen();
    const o = this.#svc.options;
    if (o.sandboxApi === "v2") {
      throw new RuntimeError(
        "UNSUPPORTED",
        'attachSession finds a sandbox by its name or tags, which Modal\'s V2 sandbox API does not keep (the modal runtime option sandboxApi is "v2"); re-attach with a stored handle (provider.attach), or use sandboxApi "v1" (the default).',
      );
    }
    if (!o.sessionKeySecret) {
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        "attachSession needs the sessionKeySecret option (the session keys are derived from it); set the same secret on every host, or re-attach with a stored handle.",
      );
    }
    const found = await this.#findSession(sessionId);
    if (!found) {
      throw new RuntimeError(
        "NOT_FOUND",
        `No running Modal sandbox serves session "${sessionId}" in the App "${o.appName}"; create a new runtime.`,
      );
    }
    const { sb, tags, name } = found;
    const nonce = tags[TAGS.keyNonce];
    if (!nonce)
      throw new RuntimeError(
        "FAILED_PRECONDITION",
        `Sandbox ${sb.sandboxId} has no ${TAGS.keyNonce} tag: it was not created by runtime-modal; re-attach with its handle.`,
      );
    const tunnels = await withRetry(() => sb.tunnels(), {
      step: "tunnels",
      what: `Getting the tunnels of sandbox ${sb.sandboxId} failed`,
      retry: o.retry,
    });
    const img = this.#svc.image;
    const server = tunnels[img.port];
    if (!server)
      throw new RuntimeError(
        "NOT_FOUND",
        `Sandbox ${sb.sandboxId} has no tunnel for port ${img.port}; was it created with another image configuration?`,
      );
    const vscode = o.vscodePort !== undefined ? tunnels[o.vscodePort] : undefined;
    const data: ModalHandleData & Record<string, unknown> = {
      sandboxId: sb.sandboxId,
      appName: o.appName,
      sandboxName: name,
      ...(o.environment ? { environment: o.environment } : {}),
      workspaceDir: img.workspaceDir,
      ...(o.caCertPem ? { caCertPem: o.caCertPem } : {}),
      ...(vscode ? { vscodeBaseUrl: vscode.url } : {}),
      ...(tags[TAGS.lease] ? { leaseId: tags[TAGS.lease] } : {}),
    };
    return this.attach({
      version: 1,
      backend: "modal",
      sessionId,
      url: server.url,
      sessionApiKey: derivedSessionKey(o.sessionKeySecret.reveal(), nonce),
      data,
    });
  }

  async #findSession(
    sessionId: string,
  ): Promise<{ sb: Sandbox; tags: Record<string, string>; name: string } | undefined> {
    const svc = this.#svc;
    const o = svc.options;
    const name = sandboxNameFor(sessionId);
    try {
      const sb = await withRetry(
        () =>
          svc.client.sandboxes.fromName(o.appName, name, o.environment ? { environment: o.environment } : {}),
        {
          step: "lookup",
          what: `Looking up sandbox ${name} failed`,
          retry: o.retry,
        },
      );
      const tags = await withRetry(() => sb.getTags(), {
        step: "tags",
        what: `Reading the tags of ${sb.sandboxId} failed`,
        retry: o.retry,
      });
      if (tags[TAGS.session] === sessionId) return { sb, tags, name };
    } catch (err) {
      if (toModalRuntimeError(err, "lookup", "lookup").code !== "NOT_FOUND") throw err;
    }
    // Pooled sandboxes keep their pool name: find them by the session tag (tags read per sandbox).
    const listed = (await this.inventory.list({ [TAGS.session]: sessionId }))[0];
    if (!listed) return undefined;
    return { sb: await svc.client.sandboxes.fromId(listed.sandboxId), tags: listed.tags, name: listed.name };
  }

  /**
   * Drains the warm pool, then terminates any sandbox still tagged with this provider's pool id (a start that
   * outlived its runtime). Runtimes handed out keep running. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#pool?.drain();
      await Promise.allSettled([...this.#retags]);
      if (!this.#pool) return;
      try {
        // Still tagged with this provider's pool: never handed out (a hand-out removes the tag).
        const leftovers = await this.inventory.list({ [TAGS.pool]: this.poolId });
        const log = this.#context.logger;
        for (const sb of leftovers) {
          log.warn("terminating a leftover warm-pool sandbox", { sandboxId: sb.sandboxId });
          const failed = await this.inventory.terminate(sb.sandboxId).then(
            () => undefined,
            (err: unknown) => String(err),
          );
          if (failed)
            log.warn("terminating a pooled sandbox failed", { sandboxId: sb.sandboxId, error: failed });
        }
      } catch (err) {
        this.#context.logger.warn("sweeping warm-pool sandboxes failed", {
          poolId: this.poolId,
          error: String(err),
        });
      }
    })();
    return this.#closed;
  }

  toJSON(): Record<string, unknown> {
    const o = this.#svc.options;
    return {
      backend: this.backend,
      appName: o.appName,
      image: this.#svc.image.spec.base,
      pool: o.pool,
      capabilities: this.capabilities,
    };
  }

  [inspect.custom](): string {
    return `ModalRuntimeProvider ${JSON.stringify(this.toJSON())}`;
  }
}

/**
 * The `modal` runtime plugin for a `PluginRegistry`: renamed options named with their replacement, the schema,
 * then the checks between options (`validate`), then a {@link ModalRuntimeProvider}. {@link modalRuntime} runs
 * the same pipeline.
 */
export const modalRuntimePlugin = definePlugin({
  name: "modal",
  kind: "runtime",
  optionsSchema: ModalRuntimeOptionsSchema,
  renamedOptions: MODAL_RENAMED_OPTIONS,
  validate: validateModalRuntimeOptions,
  create: (options, context) => new ModalRuntimeProvider(options, context),
});

const WHAT = "modal runtime options";

/**
 * Parses modal runtime options as the plugin does (renamed options named, every issue as `path: message`, then the
 * checks between options), without creating a client.
 */
export function parseModalRuntimeOptions(options: ModalRuntimeOptions): ResolvedModalRuntimeOptions {
  return resolvePluginOptions(modalRuntimePlugin, options, WHAT);
}

/**
 * Creates a Modal runtime provider through the plugin's pipeline: options parsed once, one `ModalClient`,
 * credentials checked at once. `context` is optional: a logger, a redactor, and the `secrets` and `cost` hooks of
 * whatever plugins you use (none needed; runtime-core's contract types, not those packages).
 *
 * @example
 * ```ts
 * const modal = modalRuntime({ appName: "my-agents", cpuCores: 1, cpuLimitCores: 2, memoryMiB: 2048, pool: { size: 2 } });
 * const runtime = await modal.create({ sessionId: "s1" });
 * await runtime.connect();
 * console.log((await runtime.runCommand("uname -a")).content);
 * await runtime.close();
 * await modal.close();
 * ```
 */
export function modalRuntime(
  options: ModalRuntimeOptions = {},
  context: Partial<PluginContext> = {},
): ModalRuntimeProvider {
  return createPluginInstance(
    modalRuntimePlugin,
    options,
    { logger: quietLogger, redactor: noopRedactor, ...context },
    WHAT,
  );
}
