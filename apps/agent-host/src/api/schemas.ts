import { checkSessionTimeouts, SessionOverridesSchema } from "@agent-runtime/runtime-core";
import { z } from "zod";

/** A secret-free error. */
export const ErrorInfoSchema = z.object({
  /** One of runtime-core's error codes (NOT_FOUND, INVALID_ARGUMENT, TIMEOUT, ...). */
  code: z.string(),
  /** What went wrong and what to do next. */
  message: z.string(),
  /** Structured, secret-free details. */
  details: z.record(z.string(), z.unknown()).optional(),
});

/** The body of every error response. */
export const ErrorBodySchema = z.object({
  error: ErrorInfoSchema.extend({
    /** For INVALID_ARGUMENT: every problem as `path: message` (e.g. `body.args.command: ...`). */
    issues: z.array(z.string()).optional(),
  }),
});

/** Session lifecycle states. */
export const SESSION_STATUSES = ["starting", "ready", "error", "closing", "closed"] as const;
/** Task lifecycle states. */
export const TASK_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;

const isoTime = z.iso.datetime();

/** A session as the API returns it (never its handle or keys). */
export const SessionSchema = z.object({
  id: z.string(),
  /** Runtime backend (`local`, `modal`, ...). */
  backend: z.string(),
  /** `starting` until the sandbox is ready; `error` when it failed or went away; `closed` after delete. */
  status: z.enum(SESSION_STATUSES),
  /** The runtime's last status (`STATUS$READY`, `STATUS$STARTING_RUNTIME`, ...). */
  runtimeStatus: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  /** Who the session's cost is charged to (`userId` of the create body), or null. */
  userId: z.string().nullable(),
  /**
   * What the create body asked for over the provider's options (`image`, `gpu`, `cpuCores`, `memoryMiB`,
   * `timeoutMs`, `idleTimeoutMs`, `env`); `{}` when the session has the provider's shape.
   */
  overrides: z.object({
    image: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    gpu: z.string().optional(),
    cpuCores: z.number().optional(),
    memoryMiB: z.number().int().optional(),
    timeoutMs: z.number().int().optional(),
    idleTimeoutMs: z.number().int().optional(),
    env: z.record(z.string(), z.string()).optional(),
  }),
  error: ErrorInfoSchema.nullable(),
  /** Number of tasks per status. */
  tasks: z.object({
    queued: z.number().int(),
    running: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    cancelled: z.number().int(),
  }),
  createdAt: isoTime,
  updatedAt: isoTime,
  readyAt: isoTime.nullable(),
  closedAt: isoTime.nullable(),
});

/** A task: one action submitted to a session, and its result once finished. */
export const TaskSchema = z.object({
  id: z.string(),
  sessionId: z.string(),
  /** Position in the session's queue (1, 2, ...): actions run in this order. */
  seq: z.number().int(),
  /** `completed` means an observation came back (it may be an error observation or a non-zero exit). */
  status: z.enum(TASK_STATUSES),
  /** The action in OpenHands wire form, defaults filled. */
  action: z.record(z.string(), z.unknown()),
  /** The observation in OpenHands wire form (secrets redacted), once completed. */
  observation: z.record(z.string(), z.unknown()).nullable(),
  /** Why the task failed or was cancelled. */
  error: ErrorInfoSchema.nullable(),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
  /** Run time (finished - started), in ms. */
  durationMs: z.number().nullable(),
});

/**
 * `POST /v1/sessions` body: an id, and runtime-core's per-session overrides (`SessionOverridesSchema`): `image`,
 * `gpu`, `cpuCores`, `memoryMiB`, `timeoutMs`, `idleTimeoutMs`, `env`, `labels`, `userId`. The runtime provider
 * validates them against what its backend can do (INVALID_ARGUMENT 400, UNSUPPORTED 501 naming the field).
 */
export const CreateSessionBodySchema = z
  .strictObject({
    /** Your id for the session; generated when absent. */
    id: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
        "use 1-64 letters, digits, . _ - (starting with a letter or digit)",
      )
      .optional(),
    ...SessionOverridesSchema.shape,
    /** Free-form labels kept with the session. @default {} */
    labels: SessionOverridesSchema.shape.labels.unwrap().default({}),
  })
  .superRefine(checkSessionTimeouts);

/** `?waitMs=` of long-polling routes. */
export const WaitQuerySchema = z.strictObject({
  /** Wait up to this long for a change, in ms (capped at `server.maxWaitMs`). @default 0 */
  waitMs: z.coerce.number().int().min(0).default(0),
});

/** Query of `GET /v1/sessions/:id/tasks`. */
export const TaskListQuerySchema = z.strictObject({
  /** Only tasks with `seq` greater than this. @default 0 */
  afterSeq: z.coerce.number().int().min(0).default(0),
  /** At most this many tasks. @default 100 */
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Query of `GET /v1/sessions/:id/events`. */
export const EventsQuerySchema = z.strictObject({
  /** Replay stored events with an id greater than this (the `Last-Event-ID` header wins when both are given). */
  after: z.coerce.number().int().min(0).optional(),
});

/** Report groupings of `GET /v1/costs`. */
export const COST_GROUPS = ["session", "user", "day", "month", "provider", "gpu"] as const;

/** Query of `GET /v1/costs`. */
export const CostsQuerySchema = z.strictObject({
  /** How settled spend is grouped. @default "session" */
  by: z.enum(COST_GROUPS).default("session"),
});

/** `GET /v1/costs` response. */
export const CostsSchema = z.object({
  /** False when no cost plugin is configured (everything else is then empty). */
  enabled: z.boolean(),
  /** The cost plugin's name. */
  plugin: z.string().nullable(),
  by: z.enum(COST_GROUPS),
  /** Settled spend grouped by `by`. */
  rows: z.array(
    z.object({
      key: z.string(),
      leases: z.number(),
      hours: z.number(),
      gpuHours: z.number(),
      costUsd: z.number(),
    }),
  ),
  /** Sum of `rows[].costUsd`. */
  totalUsd: z.number(),
  /** Every budget in its current period. */
  budgets: z.array(
    z.object({
      budget: z.string(),
      scope: z.string(),
      period: z.string(),
      enforcement: z.string(),
      limitUsd: z.number(),
      spentUsd: z.number(),
      reservedUsd: z.number(),
      remainingUsd: z.number(),
      usedPercent: z.number(),
    }),
  ),
});

/** `GET /health` response. */
export const HealthSchema = z.object({
  ok: z.boolean(),
  backend: z.string(),
  sessions: z.object({ open: z.number().int() }),
});

/** A session list. */
export const SessionListSchema = z.object({ sessions: z.array(SessionSchema) });
/** A task list. */
export const TaskListSchema = z.object({ tasks: z.array(TaskSchema) });

/** A session as the API returns it. */
export type SessionView = z.infer<typeof SessionSchema>;
/** A task as the API returns it. */
export type TaskView = z.infer<typeof TaskSchema>;
/** The `GET /v1/costs` response. */
export type CostsView = z.infer<typeof CostsSchema>;
/** What `POST /v1/sessions` accepts (as clients write it); what `AgentHost.createSession` takes. */
export type CreateSessionInput = z.input<typeof CreateSessionBodySchema>;
/** A `POST /v1/sessions` body after parsing (labels default to `{}`). */
export type CreateSessionBody = z.output<typeof CreateSessionBodySchema>;
/** A cost report grouping. */
export type CostGroup = (typeof COST_GROUPS)[number];
