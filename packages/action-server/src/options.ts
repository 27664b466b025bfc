import type { Logger } from "@agent-runtime/runtime-core";
import { z } from "zod";

const loggerSchema = z.custom<Logger>(
  (value) =>
    typeof value === "object" &&
    value !== null &&
    ["debug", "info", "warn", "error"].every(
      (m) => typeof (value as Record<string, unknown>)[m] === "function",
    ),
  { message: "expected a Logger with debug, info, warn and error methods" },
);

/** Options of {@link startActionServer}, validated once with zod. */
export const ActionServerOptionsSchema = z.strictObject({
  /**
   * Absolute or relative directory the shell starts in and relative paths resolve against; created when missing.
   * (CLI: `--working-dir`.)
   */
  workingDir: z.string().min(1, "workingDir must not be empty (pass --working-dir /workspace)"),
  /** TCP port; 0 picks a free one (read it back from the handle). @default 0 */
  port: z.number().int().min(0).max(65_535).default(0),
  /**
   * Listen on this unix socket instead of TCP (`port` and `host` are then ignored). Used when the sandbox has no
   * network of its own (runtime-local with `network: false`). (CLI: `--socket`.) @default undefined
   */
  socketPath: z.string().min(1).optional(),
  /** Address to listen on. The CLI default is `0.0.0.0`; runtime-local passes `127.0.0.1`. @default "0.0.0.0" */
  host: z.string().min(1).default("0.0.0.0"),
  /**
   * The user name reported in command metadata. When the server runs as root and `userId` names another
   * user, shells run as `userId` and new files are owned by it. @default the current user's name
   */
  username: z.string().min(1).optional(),
  /** The uid shells run as and new files are owned by (only honoured when running as root). @default current uid */
  userId: z.number().int().min(0).optional(),
  /**
   * Enables auth: every endpoint but `/alive` and `/server_info` needs a matching `X-Session-API-Key`.
   * Never logged, never passed to shells. (CLI: env `SESSION_API_KEY`.) @default undefined (auth off)
   */
  sessionApiKey: z.string().min(1, "sessionApiKey must not be empty: omit it to turn auth off").optional(),
  /**
   * A command that prints nothing for this long returns with exit code -1 while it keeps running (not applied to
   * `blocking` commands). (CLI: env `NO_CHANGE_TIMEOUT_SECONDS`.) @default 10000
   */
  noChangeTimeoutMs: z.number().positive().default(10_000),
  /** Uploads larger than this answer 413. (CLI: env `ACTION_SERVER_MAX_UPLOAD_BYTES`.) @default 1073741824 (1 GiB) */
  maxUploadBytes: z
    .number()
    .int()
    .positive()
    .default(1024 ** 3),
  /**
   * Zip uploads whose entries inflate to more than this many bytes in total answer 413 and nothing is written.
   * Counted on the bytes really inflated while extracting, not only on the sizes the zip declares.
   * (CLI: env `ACTION_SERVER_MAX_UNZIPPED_BYTES`.) @default 1073741824 (1 GiB)
   */
  maxUnzippedBytes: z
    .number()
    .int()
    .positive()
    .default(1024 ** 3),
  /** Zip uploads with more entries than this answer 413. (CLI: env `ACTION_SERVER_MAX_ZIP_ENTRIES`.) @default 100000 */
  maxZipEntries: z.number().int().positive().default(100_000),
  /**
   * Zip uploads that inflate to more than this many times the size of the zip file answer 413 (a zip bomb).
   * Checked once more than 1 MiB has been inflated, so tiny archives of repetitive text always pass.
   * (CLI: env `ACTION_SERVER_MAX_ZIP_RATIO`.) @default 200
   */
  maxZipCompressionRatio: z.number().positive().default(200),
  /**
   * When the server answers before reading a request's body (400, 403, 404, 413...), it first reads and
   * discards up to this many bytes of the body, so clients that send the whole body before reading the answer
   * (Node's fetch) see the status instead of EPIPE; a longer body is cut off by closing the connection.
   * @default 1073741824 (1 GiB)
   */
  maxDrainBytes: z
    .number()
    .int()
    .min(0)
    .default(1024 ** 3),
  /** JSON request bodies larger than this answer 413. (CLI: env `ACTION_SERVER_MAX_JSON_BODY_BYTES`.) @default 67108864 (64 MiB) */
  maxJsonBodyBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 ** 2),
  /**
   * Deflate level (0-9) of download zips; 0 stores entries (fastest, no CPU). Already-compressed files are always
   * stored. (CLI: env `ACTION_SERVER_ZIP_LEVEL`.) @default 0
   */
  zipLevel: z.number().int().min(0).max(9).default(0),
  /** The bash executable for shells. (CLI: env `ACTION_SERVER_SHELL`.) @default "bash" */
  shellPath: z.string().min(1).default("bash"),
  /** The Python used by `run_ipython`; when missing, `run_ipython` answers an ErrorObservation. @default "python3" */
  pythonPath: z.string().min(1).default("python3"),
  /**
   * Environment of shells and the Python process. `SESSION_API_KEY` is always removed.
   * @default the server's own environment
   */
  shellEnv: z.record(z.string(), z.string()).optional(),
  /** Where diagnostics go; without one the server is quiet (warnings and errors to stderr). */
  logger: loggerSchema.optional(),
});

/** What callers of {@link startActionServer} write. */
export type ActionServerOptions = z.input<typeof ActionServerOptionsSchema>;
/** Options after validation, defaults filled in. */
export type ResolvedActionServerOptions = z.output<typeof ActionServerOptionsSchema>;
