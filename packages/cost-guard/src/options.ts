import { z } from "zod";
import { BudgetSchema } from "./budgets.js";
import { PriceTableOverrideSchema } from "./prices.js";

/**
 * Option names people reach for, and the option cost-guard uses instead: reported before the schema runs,
 * as `dbPath: this option is now "ledgerPath"` (runtime-core's `resolvePluginOptions`).
 */
export const RENAMED_COST_GUARD_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  dbPath: "ledgerPath",
  db: "ledgerPath",
  database: "ledgerPath",
  path: "ledgerPath",
  limits: "budgets",
  pricing: "prices",
  priceTable: "prices",
  idleMs: "idleTimeoutMs",
  reaperIdleMs: "idleTimeoutMs",
});

/** Options of a cost guard (what users write; see {@link ResolvedCostGuardOptions} for the parsed form). */
export const CostGuardOptionsSchema = z
  .object({
    /**
     * Where the ledger lives: a SQLite file path (WAL mode; share it between processes to share budgets)
     * or `:memory:` (lost on exit). The CLI reads `--db` or `AGENT_RUNTIME_COST_DB`.
     * @default ":memory:"
     */
    ledgerPath: z.string().min(1).default(":memory:"),
    /** Price overrides merged over the default table (any subset). @default undefined (the defaults) */
    prices: PriceTableOverrideSchema.optional(),
    /** A JSON file with price overrides, applied before `prices`. @default undefined */
    pricesFile: z.string().min(1).optional(),
    /** Budgets checked at every reservation. Names must be unique. @default [] */
    budgets: z.array(BudgetSchema).default([]),
    /**
     * What a settled lease is charged: `request` (duration x the rate at the requested CPU and memory, what
     * the provider bills when the sandbox does not burst) or `worstCase` (duration x the rate at the CPU and
     * memory ceilings: never under-counts, over-counts idle sandboxes). Reservations always use the worst case.
     * @default "request"
     */
    chargeAt: z.enum(["request", "worstCase"]).default("request"),
    /** The idle reaper ends leases without a heartbeat for this long, in ms. @default undefined (off) */
    idleTimeoutMs: z.number().int().positive().optional(),
    /** How often enforcement (accrual, reaper, terminate budgets, warnings) runs, in ms; 0 turns the timer off. @default 5000 */
    enforceIntervalMs: z.number().int().nonnegative().default(5000),
    /**
     * How long a ledger write waits for another process holding the ledger's write lock, in ms; then it fails
     * with UNAVAILABLE. The async methods (`reserve`, `settle`, `activate`, ...) wait without blocking the
     * event loop (retries with backoff, 2 to 50 ms apart); the sync ones (`reserveSync`, `settleSync`) and the
     * constructor, when it must write, block. 0 fails at once.
     * @default 5000
     */
    busyTimeoutMs: z.number().int().nonnegative().default(5000),
    /**
     * Create the ledger's directory (and missing parents, mode 0700) when it does not exist; when false a
     * missing directory is NOT_FOUND. The ledger file is always created 0600 (its -wal and -shm follow).
     * @default false
     */
    createLedgerDirectory: z.boolean().default(false),
    /** SQLite `synchronous`: `normal` survives process crashes, `full` also power loss. @default "normal" */
    synchronous: z.enum(["normal", "full"]).default("normal"),
    /**
     * SQLite driver of the ledger: `node` (node:sqlite, built into Node 22.13+ and 24: no native addon),
     * `better-sqlite3` (an optional dependency, for Node 20), or `auto`: node:sqlite where Node has it, else
     * better-sqlite3. Both read and write the same ledger files. Environment fallback for `auto`:
     * `AGENT_RUNTIME_SQLITE_DRIVER`.
     * @default "auto"
     */
    sqliteDriver: z.enum(["auto", "node", "better-sqlite3"]).default("auto"),
    /** Reservations allowed per minute in this process (stops create loops); unset means no limit. @default undefined */
    maxReservationsPerMinute: z.number().int().positive().optional(),
    /** The orphan sweeper leaves leases younger than this alone (their create may be in flight), in ms. @default 60000 */
    sweepGraceMs: z.number().int().nonnegative().default(60_000),
  })
  .strict()
  .superRefine((o, ctx) => {
    const seen = new Set<string>();
    o.budgets.forEach((b, i) => {
      if (seen.has(b.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["budgets", i, "name"],
          message: `duplicate budget name "${b.name}": give each budget a unique name`,
        });
      }
      seen.add(b.name);
    });
  });

/** Options of a cost guard as users write them. */
export type CostGuardOptions = z.input<typeof CostGuardOptionsSchema>;
/** Options of a cost guard after parsing, with defaults applied. */
export type ResolvedCostGuardOptions = z.output<typeof CostGuardOptionsSchema>;
