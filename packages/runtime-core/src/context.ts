import type { SandboxInventory } from "./inventory.js";
import type { Logger } from "./logger.js";

/**
 * Scrubs secret values from text and structured data. Implemented by `@agent-runtime/secrets`;
 * runtime-core applies it on the observation path, to logs and to status events.
 */
export interface Redactor {
  /** Returns `text` with every known secret (and its encoded forms) replaced by a placeholder. */
  redact(text: string): string;
  /** Deep-copies `value`, redacting every string inside (object keys are kept). */
  redactDeep<T>(value: T): T;
  /** True when no secret is registered (redaction is then the identity). */
  readonly isEmpty: boolean;
  /**
   * Starts redacting a text that arrives in chunks (live command output), so that a secret split across
   * chunks is still caught. Optional: without it, runtime-core's `redactionStream` redacts whole lines.
   */
  createStream?(): RedactionStream;
}

/** Redaction of a chunked text: see {@link Redactor.createStream}. */
export interface RedactionStream {
  /** Adds a chunk; returns the redacted text that can no longer be part of a secret (may be ""). */
  write(chunk: string): string;
  /** Ends the stream; returns the redacted remainder. */
  flush(): string;
}

/** The identity redactor, used when no secrets provider is configured. */
export const noopRedactor: Redactor = {
  redact: (text) => text,
  redactDeep: (value) => value,
  isEmpty: true,
};

/**
 * Secrets resolved for one sandbox: environment to inject and the redactor that hides them.
 * `JSON.stringify` / `util.inspect` of an implementation must never show values.
 */
export interface ResolvedSecrets {
  /** Environment variables to set in the sandbox (names are safe to log, values are not). */
  readonly env: Readonly<Record<string, string>>;
  /** Names of the variables in `env` (safe to log). */
  readonly names: readonly string[];
  /** A redactor that knows every value in `env`. */
  readonly redactor: Redactor;
  /**
   * Files to write in the sandbox (e.g. a git credential helper), path -> content and mode. A path is absolute
   * or starts with `~/` (the sandbox's HOME). Runtimes write them while provisioning, before they report READY,
   * created with `mode` from the start (see `provisionSecretFiles`). Content may hold secrets: it is never
   * logged, and `redactor` must know every secret value inside it (so printing the file shows placeholders).
   */
  readonly files?: Readonly<Record<string, { content: string; mode: number }>>;
  /**
   * Secrets a backend resolves itself, by reference (no values cross the host): for example Modal named
   * secrets, which runtime-modal attaches to the sandbox. A backend ignores references of other backends.
   */
  readonly references?: readonly SecretReference[];
}

/**
 * A secret a backend resolves by name on its side. `backend` names the backend that understands it
 * (`"modal"`: a Modal named secret); what is held inside stays with that backend.
 */
export interface SecretReference {
  /** The backend that resolves it, e.g. `"modal"`. */
  readonly backend: string;
  /** The secret's name on that backend. */
  readonly name: string;
  /** Keys the backend must find in the secret (it fails the create otherwise). */
  readonly requiredKeys?: readonly string[];
  /** Backend environment (Modal: the environment name); absent: the backend's default. */
  readonly environment?: string;
}

/** Resolves the secrets a sandbox should receive. Implemented by `@agent-runtime/secrets`. */
export interface SecretsResolver {
  resolve(request?: { sessionId?: string; required?: readonly string[] }): Promise<ResolvedSecrets>;
}

/**
 * What a `secrets` plugin creates: a resolver, and optionally a live redactor that knows every value it has
 * resolved so far (hosts install it on their logs, events and stored records).
 */
export interface SecretsPlugin extends SecretsResolver {
  /** Redacts every secret value this resolver has handed out. Absent: hosts use each resolution's redactor. */
  readonly redactor?: Redactor;
  /** Releases what the resolver holds. */
  close?(): void | Promise<void>;
}

/** What a sandbox will use, for pricing. Units are in the names. */
export interface SandboxCostSpec {
  /** Backend name, e.g. `"modal"` or `"local"`; prices are looked up per provider. */
  provider: string;
  /** CPU request in physical cores. */
  cpuCores: number;
  /** CPU ceiling in cores; when absent the provider's default burst ceiling applies. */
  cpuLimitCores?: number;
  /** Memory request in MiB. */
  memoryMiB: number;
  /** Memory ceiling in MiB. */
  memoryLimitMiB?: number;
  /** GPU request such as `"A100-80GB:2"`. */
  gpu?: string;
  /** Region pin, e.g. `"us"` or `"us-west"`. */
  region?: string;
}

/** Who a lease is charged to. */
export interface CostScope {
  userId?: string;
  sessionId?: string;
  tags?: Record<string, string>;
}

/** A reservation of money made before a sandbox is created. */
export interface LeaseInfo {
  leaseId: string;
  /** Worst-case cost reserved, in USD. */
  reservedUsd: number;
  /** Lifetime the reservation covers, in ms. */
  lifetimeMs: number;
}

/** The result of settling a lease. */
export interface SettlementInfo {
  leaseId: string;
  /** Money actually charged, in USD. */
  chargedUsd: number;
  /** Billed duration in ms. */
  durationMs: number;
}

/**
 * Lease hooks the cost plugin provides to runtimes: reserve before create, activate with the sandbox id,
 * heartbeat while used, settle on close. Implemented by `@agent-runtime/cost-guard`.
 */
export interface CostHooks {
  reserve(request: { spec: SandboxCostSpec; scope: CostScope; lifetimeMs: number }): Promise<LeaseInfo>;
  activate(leaseId: string, sandboxId: string): Promise<void>;
  heartbeat(leaseId: string): Promise<void>;
  /**
   * Charges the lease and releases the rest of its reservation. Settling twice charges once. `endedAtMs`
   * bills up to when the sandbox ended (a sandbox found gone later).
   */
  settle(leaseId: string, options?: { reason?: string; endedAtMs?: number }): Promise<SettlementInfo>;
  /** Registers what to call when a budget forces a sandbox to stop. Returns an unregister function. */
  onTerminate?(leaseId: string, terminate: (reason: string) => Promise<void>): () => void;
  /** Moves an open lease to another scope (a pooled sandbox handed out to a session). */
  rescope?(leaseId: string, scope: CostScope): Promise<void>;
}

/** One budget's standing, as a cost plugin reports it. */
export interface BudgetStatus {
  budget: string;
  scope: string;
  period: string;
  enforcement: string;
  limitUsd: number;
  spentUsd: number;
  reservedUsd: number;
  remainingUsd: number;
  usedPercent: number;
}

/** One row of a cost report. */
export interface CostReportRow {
  key: string;
  leases: number;
  hours: number;
  gpuHours: number;
  costUsd: number;
}

/** A lease as a cost plugin stores it (what hosts need to settle the lease of a lost sandbox). */
export interface LeaseRecord {
  status: string;
  createdAtMs: number;
  lifetimeMs: number;
}

/**
 * What a `cost` plugin creates: the lease hooks runtimes use, plus optional reports and lookups hosts use.
 */
export interface CostPlugin extends CostHooks {
  /** Every budget's standing. */
  budgetStatus?(): BudgetStatus[];
  /** Spend grouped by `by` since `sinceMs`. */
  report?(query: {
    by: "user" | "session" | "day" | "month" | "gpu" | "provider";
    sinceMs?: number;
  }): CostReportRow[];
  /** A lease by id, or undefined when the plugin does not know it. */
  getLease?(leaseId: string): LeaseRecord | undefined;
  /**
   * Reconciles leases with a backend's live sandboxes (a provider's `inventory`): settles leases whose sandbox is
   * gone, terminates sandboxes no open lease pays for. Hosts run it after re-attaching on start.
   */
  sweepOrphans?(inventory: SandboxInventory): Promise<OrphanSweepReport>;
  /** Stops timers and closes storage. */
  close?(): void | Promise<void>;
}

/** What one orphan sweep did (ids and counts; secret-free). */
export interface OrphanSweepReport {
  /** Sandboxes listed with a lease tag. */
  listed: number;
  /** Leases settled because no sandbox carries them. */
  settled: readonly { leaseId: string }[];
  /** Sandboxes terminated because no open lease pays for them. */
  terminated: readonly { sandboxId: string; leaseId: string; reason: string }[];
  /** Sandboxes found for leases that were reserved but never activated (now active). */
  adopted: readonly { sandboxId: string; leaseId: string }[];
  /** Terminations that failed (the sandbox may still run). */
  errors: readonly { sandboxId: string; message: string }[];
}

/** What every plugin's `create` receives: one object that passes shared services to each part. */
export interface PluginContext {
  logger: Logger;
  /** Redacts active secret values; the identity when no secrets plugin is configured. */
  redactor: Redactor;
  /** Present when a secrets plugin is configured. */
  secrets?: SecretsResolver;
  /** Present when a cost plugin is configured. */
  cost?: CostHooks;
}
