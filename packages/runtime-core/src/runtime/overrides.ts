import { z } from "zod";
import { InvalidArgumentError, RuntimeError } from "../errors.js";
import { checkRenamedOptions, parseOrThrow } from "../validation.js";

const MAX_LIFETIME_MS = 24 * 3_600_000;

/** Environment variable names: letters, digits and `_`, not starting with a digit. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Label keys: letters, digits, `. _ / -`, 1-64 characters. */
const LABEL_KEY = /^[A-Za-z0-9._/-]{1,64}$/;

/**
 * The cross-field rule of session overrides: an idle timeout never exceeds the lifetime. Shared by every
 * schema that embeds the override fields (runtime-core's, agent-host's request body).
 */
export function checkSessionTimeouts(
  o: { idleTimeoutMs?: number | undefined; timeoutMs?: number | undefined },
  ctx: { addIssue(issue: { code: "custom"; path: PropertyKey[]; message: string }): void },
): void {
  if (o.idleTimeoutMs !== undefined && o.timeoutMs !== undefined && o.idleTimeoutMs > o.timeoutMs) {
    ctx.addIssue({
      code: "custom",
      path: ["idleTimeoutMs"],
      message: `must not exceed timeoutMs (${o.timeoutMs})`,
    });
  }
}

/**
 * What one session may ask of its sandbox, over the provider's options. Every field is optional: absent means
 * "the provider's option". Units are in the names. A backend that cannot honour a field refuses the create
 * with UNSUPPORTED naming the field; it never ignores one.
 */
export const SessionOverridesSchema = z
  .object({
    /**
     * The sandbox image: an image name (`registry/name:tag`) or a backend-specific spec object (runtime-modal:
     * `{ openhands: "<image>" }` or an image-builder `ImageSpec`).
     * @default the provider's `image`
     */
    image: z
      .union([
        z.string().min(1, "must be an image name such as registry/name:tag"),
        z.record(z.string(), z.unknown()),
      ])
      .describe(
        "Image name (registry/name:tag) or a backend-specific image spec; default: the provider's image.",
      )
      .optional(),
    /** GPU request `"TYPE"` or `"TYPE:N"` (e.g. `"A100-80GB:2"`); needs the `gpu` capability. @default the provider's */
    gpu: z
      .string()
      .regex(/^[A-Za-z0-9!+-]+(:[1-9][0-9]*)?$/, 'use "TYPE" or "TYPE:N", e.g. "T4" or "A100-80GB:2"')
      .describe('GPU request "TYPE" or "TYPE:N", e.g. "A100-80GB:2"; needs a backend with GPUs.')
      .optional(),
    /** CPU request in physical cores (fractional allowed). @default the provider's */
    cpuCores: z
      .number()
      .positive()
      .max(64)
      .describe("CPU request in physical cores (fractional allowed); default: the provider's.")
      .optional(),
    /** Memory request in MiB. @default the provider's */
    memoryMiB: z
      .number()
      .int()
      .min(128)
      .max(344_064)
      .describe("Memory request in MiB; default: the provider's.")
      .optional(),
    /** Maximum lifetime of the sandbox in ms (at most 24 h). @default the provider's */
    timeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(MAX_LIFETIME_MS)
      .describe("Maximum lifetime of the sandbox in ms (at most 24 h); default: the provider's.")
      .optional(),
    /** The sandbox ends after this long without activity, in ms (at most 24 h). @default the provider's */
    idleTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(MAX_LIFETIME_MS)
      .describe("The sandbox ends after this long without activity, in ms; default: the provider's.")
      .optional(),
    /**
     * Non-secret environment variables, merged over the provider's `env` (a key given here wins). Secrets come
     * from the secrets plugin, never from here.
     * @default {}
     */
    env: z
      .record(z.string().regex(ENV_NAME, "not a valid variable name"), z.string())
      .describe("Non-secret environment variables, merged over the provider's env.")
      .optional(),
    /** Free-form labels, kept in the runtime's handle (runtime-modal also puts them in the sandbox's tags). @default {} */
    labels: z
      .record(
        z.string().regex(LABEL_KEY, "label keys use 1-64 letters, digits, . _ / -"),
        z.string().max(256, "label values hold at most 256 characters"),
      )
      .describe("Free-form labels kept with the session (and its handle).")
      .optional(),
    /** Who pays: the cost lease's `scope.userId`, so cost-guard budgets with a `user` scope apply. @default none */
    userId: z
      .string()
      .regex(/^[A-Za-z0-9._@:-]{1,128}$/, "use 1-128 letters, digits, . _ @ : -")
      .describe("Who pays: the cost scope's userId, so per-user budgets apply.")
      .optional(),
  })
  .strict()
  .superRefine(checkSessionTimeouts);

/** Per-session overrides as callers write them. */
export type SessionOverrides = z.input<typeof SessionOverridesSchema>;
/** Per-session overrides after parsing. */
export type ResolvedSessionOverrides = z.output<typeof SessionOverridesSchema>;
/** The name of one override field. */
export type SessionOverrideField = keyof ResolvedSessionOverrides;

/**
 * The override fields that shape the sandbox itself, in documentation order: a backend honours some or all of
 * them (its `supported` list); `labels` and `userId` every backend honours.
 */
export const SANDBOX_OVERRIDE_FIELDS = [
  "image",
  "gpu",
  "cpuCores",
  "memoryMiB",
  "timeoutMs",
  "idleTimeoutMs",
  "env",
] as const satisfies readonly SessionOverrideField[];

/** Every override field, in documentation order. */
export const SESSION_OVERRIDE_FIELDS = [
  ...SANDBOX_OVERRIDE_FIELDS,
  "labels",
  "userId",
] as const satisfies readonly SessionOverrideField[];

/**
 * What {@link RuntimeProvider.create} takes: the session id and its {@link SessionOverrides}.
 *
 * @example
 * ```ts
 * await provider.create({ sessionId: "s1", gpu: "T4", memoryMiB: 8192, userId: "alice", labels: { team: "ml" } });
 * ```
 */
export const CreateRuntimeInputSchema = z
  .object({
    /** The session the runtime serves. */
    sessionId: z.string().min(1),
  })
  .extend(SessionOverridesSchema.shape)
  .strict()
  .superRefine(checkSessionTimeouts);

/** What callers pass to {@link RuntimeProvider.create}. */
export type CreateRuntimeInput = z.input<typeof CreateRuntimeInputSchema>;
/** {@link CreateRuntimeInput} after parsing. */
export type ResolvedCreateRuntimeInput = z.output<typeof CreateRuntimeInputSchema>;

/** Guessed or old names of override fields, and the field to use (an error names it). */
export const RENAMED_OVERRIDES: Readonly<Record<string, string>> = {
  cpu: "cpuCores",
  cpus: "cpuCores",
  memory: "memoryMiB",
  memoryMb: "memoryMiB",
  timeout: "timeoutMs",
  idleTimeout: "idleTimeoutMs",
  tags: "labels",
  user: "userId",
};

/**
 * Parses a create input once (every issue as `path: message`, renamed fields named) and refuses, with
 * UNSUPPORTED naming each field, what the backend cannot honour. `supported` lists the fields the backend
 * implements besides `labels` and `userId`, which core handles for every backend.
 *
 * @example
 * ```ts
 * const input = parseCreateRuntimeInput(raw, { backend: "local", supported: ["memoryMiB", "env"] });
 * ```
 */
export function parseCreateRuntimeInput(
  input: unknown,
  backend: {
    backend: string;
    supported: readonly SessionOverrideField[];
    hints?: Partial<Record<SessionOverrideField, string>>;
  },
): ResolvedCreateRuntimeInput {
  const what = `create input for the ${backend.backend} runtime`;
  checkRenamedOptions(input, RENAMED_OVERRIDES, what);
  const parsed = parseOrThrow(CreateRuntimeInputSchema, input ?? {}, what);
  const supported = new Set<SessionOverrideField>([...backend.supported, "labels", "userId"]);
  const refused = SESSION_OVERRIDE_FIELDS.filter((f) => parsed[f] !== undefined && !supported.has(f));
  if (refused.length > 0) {
    const issues = refused.map(
      (f) =>
        `${f}: the ${backend.backend} backend cannot set this per session${backend.hints?.[f] ? `; ${backend.hints[f]}` : ""}`,
    );
    throw new RuntimeError("UNSUPPORTED", `Unsupported ${what}:\n  ${issues.join("\n  ")}`, {
      details: { fields: refused, issues },
    });
  }
  return parsed;
}

/** The overrides of a parsed create input (the input without its `sessionId`), with absent fields left out. */
export function overridesOf(input: ResolvedCreateRuntimeInput): ResolvedSessionOverrides {
  const out: Record<string, unknown> = {};
  for (const f of SESSION_OVERRIDE_FIELDS) if (input[f] !== undefined) out[f] = input[f];
  return out as ResolvedSessionOverrides;
}

/** An INVALID_ARGUMENT for overrides that parse but do not fit a provider (`issues` as `path: message`). */
export function invalidOverrides(backend: string, issues: readonly string[]): InvalidArgumentError {
  return new InvalidArgumentError(
    `Invalid create input for the ${backend} runtime:\n  ${issues.join("\n  ")}`,
    issues,
  );
}
