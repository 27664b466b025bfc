import { z } from "zod";

/** The default cap on inline content per image: 2 MiB. */
export const DEFAULT_MAX_INLINE_BYTES = 2 * 1024 * 1024;

/** Options of every renderer (`toDockerfile`, `toModalImage`, `resolveBuildPlan`). */
export const RenderOptionsSchema = z.strictObject({
  /**
   * The most bytes of inline content (copyInline files plus an inline action-server bundle) one image may
   * carry. Inline content is written by `RUN` commands (Modal cannot `COPY` local files), 12,000 bytes per
   * command, so large files belong in a package or the base image.
   * @default 2097152 (2 MiB)
   */
  maxInlineBytes: z
    .number()
    .int({ error: "must be an integer number of bytes" })
    .min(0, { error: "must not be negative" })
    .default(DEFAULT_MAX_INLINE_BYTES),
});

/** Renderer options as written by callers. */
export type RenderOptions = z.input<typeof RenderOptionsSchema>;
/** Renderer options with defaults filled in. */
export type ResolvedRenderOptions = z.output<typeof RenderOptionsSchema>;

/** The default image repository of build plans. */
export const DEFAULT_REPOSITORY = "agent-runtime";

/** Options of `resolveBuildPlan`. */
export const BuildPlanOptionsSchema = RenderOptionsSchema.extend({
  /**
   * The repository the tags live in; plans name images `<repository>:<tag>`. An existing tag matches when it
   * is written bare (`ar_v1_...`) or with this repository.
   * @default "agent-runtime"
   */
  repository: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/:-]*$/, {
      error: "must be a lower-case image repository like ghcr.io/org/runtime",
    })
    .default(DEFAULT_REPOSITORY),
  /**
   * Build from scratch even when a matching image exists (and apply every tag).
   * @default false
   */
  forceRebuild: z.boolean().default(false),
  /**
   * Allow starting from the versioned image (same base, older steps). Re-running steps on top of an older
   * image needs idempotent `run` steps; turn this off when yours are not.
   * @default true
   */
  useVersioned: z.boolean().default(true),
});

/** Build-plan options as written by callers. */
export type BuildPlanOptions = z.input<typeof BuildPlanOptionsSchema>;
/** Build-plan options with defaults filled in. */
export type ResolvedBuildPlanOptions = z.output<typeof BuildPlanOptionsSchema>;
