import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isRuntimeError, RuntimeError } from "@agent-runtime/runtime-core";
import { parseBudgets } from "./budgets.js";
import { Ledger } from "./ledger.js";
import {
  budgetStatus,
  buildReport,
  formatRows,
  OUTPUT_FORMATS,
  type OutputFormat,
  REPORT_GROUPS,
  type ReportGroup,
} from "./report.js";

/** Environment variable the CLI reads when `--db` is not given. */
export const COST_DB_ENV = "AGENT_RUNTIME_COST_DB";

const USAGE = `Usage:
  agent-runtime-cost report --by user|session|day|month|gpu|provider [--since WHEN] [--until WHEN]
                            [--format table|json|csv] [--db PATH]
  agent-runtime-cost budgets [--format table|json|csv] [--db PATH]

  report    settled spend grouped by user, session, UTC day or month, GPU type or provider
  budgets   every budget of the ledger in its current period: limit, spent, reserved, remaining

Options:
  --db PATH      the ledger file (default: $${COST_DB_ENV})
  --since WHEN   only leases reserved at or after WHEN: 2026-10-01, 2026-10-01T12:00Z, epoch ms,
                 or an age such as 30m, 24h, 7d (times without a zone are UTC)
  --until WHEN   only leases reserved before WHEN
  --format FMT   table (default), json or csv
  --now WHEN     evaluate as if the time were WHEN (for periods and ages)
  -h, --help     show this help
`;

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  nowMs: () => number;
}

class UsageError extends Error {}

/** Parses `--since`/`--until`/`--now` values: ISO dates and times (UTC unless zoned), epoch ms, or an age. */
export function parseWhen(text: string, nowMs: number, flag: string): number {
  const age = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text);
  if (age) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[age[2] as "ms"];
    return nowMs - Number(age[1]) * unit;
  }
  if (/^\d{10,}$/.test(text)) return Number(text);
  const zoned = /T.*(Z|[+-]\d{2}:?\d{2})$/i.test(text) || !text.includes("T") ? text : `${text}Z`;
  const ms = Date.parse(zoned);
  if (Number.isNaN(ms)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)} is not a time: use 2026-10-01, 2026-10-01T12:00Z, epoch ms or 24h.`,
    );
  }
  return ms;
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
  fallback?: T,
): T {
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`${flag} is required: one of ${allowed.join(", ")}.`);
  }
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not one of ${allowed.join(", ")}.`);
  }
  return value as T;
}

/**
 * Runs the `agent-runtime-cost` CLI with `argv` (without node and script) and returns the exit code:
 * 0 on success, 1 when the ledger cannot be read, 2 for a usage error.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let ledger: Ledger | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        by: { type: "string" },
        since: { type: "string" },
        until: { type: "string" },
        format: { type: "string" },
        db: { type: "string" },
        now: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    const command = positionals[0];
    if (values.help || command === "help" || command === undefined) {
      (command === undefined && !values.help ? io.stderr : io.stdout)(USAGE);
      return command === undefined && !values.help ? 2 : 0;
    }
    if (positionals.length > 1)
      throw new UsageError(`Unexpected argument ${JSON.stringify(positionals[1])}.`);
    if (command !== "report" && command !== "budgets") {
      throw new UsageError(`Unknown command ${JSON.stringify(command)}: use report or budgets.`);
    }
    const dbPath = values.db ?? io.env[COST_DB_ENV];
    if (!dbPath) throw new UsageError(`Give the ledger with --db PATH or ${COST_DB_ENV}.`);
    const nowMs = values.now === undefined ? io.nowMs() : parseWhen(values.now, io.nowMs(), "--now");
    const format = oneOf<OutputFormat>(values.format, OUTPUT_FORMATS, "--format", "table");
    if (command === "report") {
      const by = oneOf<ReportGroup>(values.by, REPORT_GROUPS, "--by");
      const sinceMs = values.since === undefined ? undefined : parseWhen(values.since, nowMs, "--since");
      const untilMs = values.until === undefined ? undefined : parseWhen(values.until, nowMs, "--until");
      ledger = new Ledger({ path: dbPath, mustExist: true });
      const rows = buildReport(ledger, {
        by,
        ...(sinceMs !== undefined ? { sinceMs } : {}),
        ...(untilMs !== undefined ? { untilMs } : {}),
      });
      const shown: Record<string, string | number>[] = rows.map(({ key, ...rest }) => ({
        [by]: key,
        ...rest,
      }));
      if (format === "table" && rows.length > 0) {
        shown.push({
          [by]: "TOTAL",
          leases: sum(rows, "leases"),
          hours: sum(rows, "hours"),
          gpuHours: sum(rows, "gpuHours"),
          costUsd: sum(rows, "costUsd"),
        });
      }
      if (format === "table" && rows.length === 0) io.stderr("No settled leases match.\n");
      io.stdout(formatRows(shown, format, [by, "leases", "hours", "gpuHours", "costUsd"]));
      return 0;
    }
    if (values.by !== undefined || values.since !== undefined || values.until !== undefined) {
      throw new UsageError("budgets takes only --db, --format and --now.");
    }
    ledger = new Ledger({ path: dbPath, mustExist: true });
    const stored = ledger.getMeta("budgets");
    const budgets = parseBudgets(stored ? JSON.parse(stored) : []);
    if (budgets.length === 0 && format === "table") io.stderr("This ledger has no budgets recorded.\n");
    const rows = budgetStatus(ledger, budgets, nowMs);
    io.stdout(
      formatRows(rows, format, [
        "budget",
        "scope",
        "period",
        "enforcement",
        "limitUsd",
        "spentUsd",
        "reservedUsd",
        "remainingUsd",
        "usedPercent",
      ]),
    );
    return 0;
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))
    ) {
      io.stderr(`agent-runtime-cost: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const e = isRuntimeError(err)
      ? err
      : new RuntimeError("INTERNAL", err instanceof Error ? err.message : String(err));
    io.stderr(`agent-runtime-cost: ${e.code}: ${e.message}\n`);
    return 1;
  } finally {
    ledger?.close();
  }
}

function sum<T>(rows: readonly T[], key: keyof T): number {
  return rows.reduce((total, r) => total + Number(r[key]), 0);
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script || typeof import.meta.url !== "string") return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    nowMs: () => Date.now(),
  }).then((code) => {
    process.exitCode = code;
  });
}
