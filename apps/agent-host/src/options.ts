import { z } from "zod";

/** Options passed to a plugin: an object whose shape the plugin's own schema checks. */
const PluginOptionsSchema = z.record(z.string(), z.unknown());

/** Which runtime plugin the host uses, and its options. */
export const RuntimeConfigSchema = z.strictObject({
  /**
   * `local` (the embedded backend), `modal` (loads `@agent-runtime/runtime-modal`), or the name of an npm module
   * that exports a runtime plugin (`definePlugin({ kind: "runtime", ... })`).
   * @default "local"
   */
  plugin: z.string().min(1).default("local"),
  /** Options of that plugin, validated by the plugin's schema (for `local`: isolation, limits, pool...). @default {} */
  options: PluginOptionsSchema.default({}),
});

/** The secrets plugin: which providers fill each sandbox's environment (values are redacted everywhere). */
export const SecretsConfigSchema = z.strictObject({
  /** Turn secrets injection off entirely. @default true */
  enabled: z.boolean().default(true),
  /** Plugin name (or a module exporting a `secrets` plugin). @default "secrets" */
  plugin: z.string().min(1).default("secrets"),
  /**
   * Options of the plugin (for `secrets`: `providers`, `git`...).
   * @default {} (the `secrets` plugin then reads `SANDBOX_ENV_*` variables of the host)
   */
  options: PluginOptionsSchema.default({}),
});

/** The cost plugin: price tables, budgets, ledger. */
export const CostConfigSchema = z.strictObject({
  /** Turn cost tracking and budgets off. @default true */
  enabled: z.boolean().default(true),
  /** Plugin name (or a module exporting a `cost` plugin). @default "cost-guard" */
  plugin: z.string().min(1).default("cost-guard"),
  /**
   * Options of the plugin (for `cost-guard`: `budgets`, `prices`, `ledgerPath`...). When `ledgerPath` is absent,
   * `serve` keeps the ledger next to the host database (`<database>.costs`, mode 0600), so costs survive restarts.
   * @default {}
   */
  options: PluginOptionsSchema.default({}),
});

/** The HTTP API server (`agent-host serve`). */
export const ServerConfigSchema = z.strictObject({
  /** Interface to bind. Anything but loopback requires a token. CLI: `--host`. @default "127.0.0.1" */
  host: z.string().min(1).default("127.0.0.1"),
  /** TCP port; 0 picks a free one. CLI: `--port`. @default 8787 */
  port: z.number().int().min(0).max(65535).default(8787),
  /**
   * Require a bearer token on every `/v1` route, also on loopback. The token is the value of the variable
   * named by `tokenEnv` when set, else the content of `<stateDir>/token` (created on first start: 32 random
   * bytes, base64url, mode 0600). `false` turns auth off (a warning at every start; loopback only).
   * CLI: `--no-auth`.
   * @default true
   */
  auth: z.boolean().default(true),
  /**
   * Environment variable holding the bearer token clients must send (`Authorization: Bearer <token>`). When
   * it is set it wins over the token file, and the token is required even with `auth: false`.
   * @default "AGENT_HOST_TOKEN"
   */
  tokenEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name")
    .default("AGENT_HOST_TOKEN"),
  /** Longest long-poll a client may ask for with `?waitMs=`, in ms (longer asks are capped). @default 60000 */
  maxWaitMs: z.number().int().min(0).max(600_000).default(60_000),
  /** Largest request body accepted, in bytes. @default 1048576 */
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Interval of SSE keep-alive comments, in ms. @default 15000 */
  sseHeartbeatMs: z.number().int().min(100).default(15_000),
});

/** Where tasks, sessions, their handles, the cost ledger and the API token are kept. */
export const StorageConfigSchema = z.strictObject({
  /**
   * The private state directory: created with mode 0700 (tightened to 0700 when it exists and is ours;
   * refused when someone else's and group- or world-writable). Holds the database, the cost ledger and the
   * API token, each mode 0600. CLI: `--state-dir`.
   * @default `$XDG_STATE_HOME/agent-host`, else `~/.local/state/agent-host`
   */
  stateDir: z.string().min(1).optional(),
  /**
   * SQLite file (mode 0600, and so are its -wal and -shm files: it holds session handles, which carry session
   * keys), or `:memory:` (nothing survives a restart). Relative paths resolve against the working directory.
   * CLI: `--db`.
   * @default `<stateDir>/agent-host.db`
   */
  path: z.string().min(1).optional(),
});

/** Session limits and lifecycle. */
export const SessionsConfigSchema = z.strictObject({
  /** Sessions that may be open (starting or ready) at once; more are refused with 429. @default 256 */
  maxSessions: z.number().int().min(1).default(256),
  /** Tasks that may wait in one session's queue; more are refused with 429. @default 1000 */
  maxQueuedTasks: z.number().int().min(1).default(1000),
  /**
   * On shutdown, leave sandboxes running so the next start re-attaches to them (`true`), or close them all
   * (`false`). Local sandboxes under bubblewrap die with the host process either way.
   * @default true
   */
  keepAliveOnShutdown: z.boolean().default(true),
});

/**
 * Top-level keys people reach for, and the option to use instead (reported as
 * `port: this option is now "server.port"`; a token itself goes into the variable `server.tokenEnv` names).
 */
export const RENAMED_CONFIG_KEYS: Readonly<Record<string, string>> = {
  backend: "runtime.plugin",
  provider: "runtime.plugin",
  db: "storage.path",
  database: "storage.path",
  stateDir: "storage.stateDir",
  auth: "server.auth",
  port: "server.port",
  host: "server.host",
  token: "server.tokenEnv",
  budgets: "cost.options.budgets",
};

/**
 * The host's configuration file (YAML or JSON). Every field is optional; `{}` runs the local runtime on
 * 127.0.0.1:8787, token required, state in `~/.local/state/agent-host`.
 *
 * @example
 * ```yaml
 * runtime:
 *   plugin: local
 *   options: { isolation: auto, pool: { size: 2 } }
 * cost:
 *   options:
 *     budgets: [{ scope: global, period: daily, limitUsd: 20 }]
 * server: { port: 8787 }
 * storage: { stateDir: /var/lib/agent-host }
 * ```
 */
export const HostConfigSchema = z.strictObject({
  /** The runtime backend. @default { plugin: "local", options: {} } */
  runtime: RuntimeConfigSchema.prefault({}),
  /** Secrets injection and redaction. @default { enabled: true, plugin: "secrets", options: {} } */
  secrets: SecretsConfigSchema.prefault({}),
  /** Cost tracking and budgets. @default { enabled: true, plugin: "cost-guard", options: {} } */
  cost: CostConfigSchema.prefault({}),
  /** The HTTP API. */
  server: ServerConfigSchema.prefault({}),
  /** Persistence of tasks and sessions: the private state directory and the database. */
  storage: StorageConfigSchema.prefault({}),
  /** Session limits. */
  sessions: SessionsConfigSchema.prefault({}),
});

/** The host configuration as users write it. */
export type HostConfig = z.input<typeof HostConfigSchema>;
/** The host configuration after parsing, defaults filled. */
export type ResolvedHostConfig = z.output<typeof HostConfigSchema>;
