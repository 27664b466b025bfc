import type { Redactor } from "../context.js";
import { quietLogger } from "../logger.js";
import { BaseRuntime, type ProvisionedSandbox } from "../runtime/base-runtime.js";
import type { RuntimeCapabilities } from "../runtime/types.js";

/** The capabilities of a runtime that offers none of the optional features. */
export const NO_CAPABILITIES: Readonly<RuntimeCapabilities> = Object.freeze({
  persistentShell: false,
  stdin: false,
  ipython: false,
  gpu: false,
  pause: false,
  attach: false,
  tunnels: false,
  vscode: false,
  fileTransfer: false,
  networkIsolation: false,
});

/** Options of {@link ServerRuntime}. */
export interface ServerRuntimeOptions {
  /** Where the action server listens (its URL, session API key, unix socket). */
  sandbox: ProvisionedSandbox;
  /** Redacts what the runtime reports (output, observations, errors). */
  redactor: Redactor;
  /** What the runtime offers, over {@link NO_CAPABILITIES}. @default a persistent shell and stdin */
  capabilities?: Partial<RuntimeCapabilities>;
  /** @default "server" */
  backend?: string;
  /** @default "s-server" */
  sessionId?: string;
  /** Runs when the runtime closes (stops the server, say). */
  onDestroy?: () => Promise<void>;
}

/**
 * A Runtime on an action server that already runs (a test's own): it provisions nothing and reaches the server
 * at `sandbox`, so tests drive the real client path (`run`, `executeAction`, redaction) against any server.
 */
export class ServerRuntime extends BaseRuntime {
  readonly #options: ServerRuntimeOptions;

  constructor(options: ServerRuntimeOptions) {
    super({
      backend: options.backend ?? "server",
      sessionId: options.sessionId ?? "s-server",
      capabilities: { ...NO_CAPABILITIES, persistentShell: true, stdin: true, ...options.capabilities },
      context: { logger: quietLogger, redactor: options.redactor },
      startupTimeoutMs: 5000,
    });
    this.#options = options;
  }

  protected async provision(): Promise<ProvisionedSandbox> {
    return this.#options.sandbox;
  }

  protected async destroy(): Promise<void> {
    await this.#options.onDestroy?.();
  }
}
