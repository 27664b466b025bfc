/**
 * The contract between `BaseRuntime` and a backend: what the backend is constructed with
 * ({@link BaseRuntimeInit}), what `provision` receives and returns, and how a provisioned sandbox is written into
 * a durable handle and read back from one.
 */
import {
  ActionExecutionClient,
  type ActionExecutionClientOptions,
} from "../client/action-execution-client.js";
import type { CostScope, LeaseInfo, PluginContext, ResolvedSecrets } from "../context.js";
import { RuntimeError } from "../errors.js";
import type { ResolvedSessionOverrides } from "./overrides.js";
import type { RuntimeCapabilities, RuntimeHandle } from "./types.js";

/** What a backend returns once its sandbox runs an action server. */
export interface ProvisionedSandbox {
  /** Backend's id for the sandbox (process id, Modal sandbox id...). */
  sandboxId: string;
  /** Base URL of the action server. */
  url: string;
  /** The session API key the server was started with. */
  sessionApiKey: string;
  /** Unix socket of the server, when it listens on one (the `url` then only names the Host). */
  socketPath?: string;
  /** Extra CA to trust for an https `url` (e.g. modal-emulator's). */
  caCertPem?: string;
  /** Base URL of the VS Code server, when there is one. */
  vscodeBaseUrl?: string;
  /** The sandbox's working directory (VS Code `folder`). @default "/workspace" */
  workspaceDir?: string;
  /** Backend-specific fields kept in the handle. */
  data?: Record<string, unknown>;
}

/** What `BaseRuntime.provision` receives. */
export interface ProvisionRequest {
  /** The cost lease reserved for this sandbox (put it in the sandbox's tags). */
  leaseId?: string;
  /** Secrets to inject as the sandbox's environment. */
  secrets?: ResolvedSecrets;
  signal?: AbortSignal;
}

/** Construction parameters of {@link BaseRuntime}. */
export interface BaseRuntimeInit {
  backend: string;
  sessionId: string;
  capabilities: RuntimeCapabilities;
  context: PluginContext;
  /** Readiness deadline of the action server, in ms. */
  startupTimeoutMs: number;
  /** Keep the sandbox running on close (it can be re-attached with the handle). @default false */
  keepAlive?: boolean;
  /** Re-attach to this sandbox instead of creating one. */
  attachTo?: RuntimeHandle;
  /** Who the cost lease is charged to (over the session id and the overrides' `userId`). */
  costScope?: CostScope;
  /**
   * The session's overrides as the provider accepted them: kept in the handle (`data.overrides`, restored on
   * attach), `labels` exposed as {@link BaseRuntime.labels}, `userId` added to the cost scope.
   */
  overrides?: ResolvedSessionOverrides;
  /** Lifetime the cost lease covers, in ms. @default 3600000 */
  lifetimeMs?: number;
  /** Hard timeout for actions without one, in ms. @default 120000 */
  defaultActionTimeoutMs?: number;
}

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/**
 * The durable handle of a provisioned sandbox: where its server listens, its key, the backend's fields, the
 * session's overrides (restored on attach) and the open lease (settled by whoever attaches, or by the host when
 * the sandbox is lost).
 */
export function handleOf(
  sandbox: ProvisionedSandbox,
  owner: {
    backend: string;
    sessionId: string;
    overrides: ResolvedSessionOverrides;
    lease: LeaseInfo | undefined;
  },
): RuntimeHandle {
  const lease = owner.lease;
  return {
    version: 1,
    backend: owner.backend,
    sessionId: owner.sessionId,
    url: sandbox.url,
    sessionApiKey: sandbox.sessionApiKey,
    data: {
      ...sandbox.data,
      sandboxId: sandbox.sandboxId,
      ...(sandbox.caCertPem ? { caCertPem: sandbox.caCertPem } : {}),
      ...(sandbox.socketPath ? { socketPath: sandbox.socketPath } : {}),
      ...(sandbox.vscodeBaseUrl ? { vscodeBaseUrl: sandbox.vscodeBaseUrl } : {}),
      ...(sandbox.workspaceDir ? { workspaceDir: sandbox.workspaceDir } : {}),
      ...(Object.keys(owner.overrides).length > 0 ? { overrides: owner.overrides } : {}),
      ...(lease
        ? { leaseId: lease.leaseId, reservedUsd: lease.reservedUsd, lifetimeMs: lease.lifetimeMs }
        : {}),
    },
  };
}

/** The sandbox a handle describes (fields of the wrong type are left out). */
export function sandboxOfHandle(handle: RuntimeHandle): ProvisionedSandbox {
  const d = handle.data;
  const caCertPem = text(d.caCertPem);
  const socketPath = text(d.socketPath);
  const vscodeBaseUrl = text(d.vscodeBaseUrl);
  const workspaceDir = text(d.workspaceDir);
  return {
    sandboxId: String(d.sandboxId ?? ""),
    url: handle.url,
    sessionApiKey: handle.sessionApiKey,
    data: d,
    ...(caCertPem ? { caCertPem } : {}),
    ...(socketPath ? { socketPath } : {}),
    ...(vscodeBaseUrl ? { vscodeBaseUrl } : {}),
    ...(workspaceDir ? { workspaceDir } : {}),
  };
}

/** The open lease a handle names, or undefined. */
export function leaseOfHandle(handle: RuntimeHandle): LeaseInfo | undefined {
  const leaseId = handle.data.leaseId;
  if (typeof leaseId !== "string") return undefined;
  return {
    leaseId,
    reservedUsd: Number(handle.data.reservedUsd ?? 0),
    lifetimeMs: Number(handle.data.lifetimeMs ?? 0),
  };
}

/** The session overrides a handle stored, or `{}`. */
export function overridesOfHandle(handle: RuntimeHandle | undefined): ResolvedSessionOverrides {
  const stored = handle?.data.overrides;
  return typeof stored === "object" && stored !== null ? (stored as ResolvedSessionOverrides) : {};
}

/** A client of the sandbox's action server (its URL, key, socket and CA). */
export function clientOf(
  sandbox: ProvisionedSandbox,
  options: Omit<ActionExecutionClientOptions, "baseUrl" | "sessionApiKey" | "socketPath" | "caCertPem"> = {},
): ActionExecutionClient {
  return new ActionExecutionClient({
    ...options,
    baseUrl: sandbox.url,
    sessionApiKey: sandbox.sessionApiKey,
    ...(sandbox.caCertPem ? { caCertPem: sandbox.caCertPem } : {}),
    ...(sandbox.socketPath ? { socketPath: sandbox.socketPath } : {}),
  });
}

/**
 * The default re-attach: the sandbox of `handle` if its server answers `/alive` with the handle's key within
 * 3 s, else NOT_FOUND (create a new runtime).
 */
export async function reattachByAlive(handle: RuntimeHandle): Promise<ProvisionedSandbox> {
  const sandbox = sandboxOfHandle(handle);
  const client = clientOf(sandbox);
  try {
    await client.alive({ timeoutMs: 3000 });
  } catch (cause) {
    throw new RuntimeError(
      "NOT_FOUND",
      `The ${handle.backend} sandbox of session ${handle.sessionId} is not running any more; create a new runtime.`,
      { cause },
    );
  } finally {
    client.close();
  }
  return sandbox;
}
