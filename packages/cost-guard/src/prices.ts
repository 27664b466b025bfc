import { readFileSync } from "node:fs";
import { InvalidArgumentError, parseOrThrow, RuntimeError } from "@agent-runtime/runtime-core";
import { z } from "zod";

const usdRate = z.number().nonnegative().finite();

/** Price and size limit of one GPU type. */
export const GpuPriceSchema = z.object({
  /** Price of one GPU of this type per second, in USD. */
  perSecondUsd: usdRate,
  /** Most GPUs of this type one container may request. @default 8 */
  maxPerContainer: z.number().int().positive().default(8),
});

/** Prices of one provider (backend). Every rate is per second, in USD. */
export const ProviderPricesSchema = z.object({
  /** Price of one physical CPU core per second (Modal: 1 core = 2 vCPU). */
  cpuPerCoreSecondUsd: usdRate,
  /** Price of one GiB of memory per second. */
  memoryPerGiBSecondUsd: usdRate,
  /** Disk is billed as memory at this ratio (20 means 20 MiB of disk cost as 1 MiB of memory). @default 20 */
  diskToMemoryRatio: z.number().positive().default(20),
  /**
   * Cores a sandbox may burst to above its request when no CPU limit is set; the worst case is priced at
   * `cpuCores + defaultCpuBurstCores`. @default 0
   */
  defaultCpuBurstCores: z.number().nonnegative().default(0),
  /** GPU types by canonical upper-case name, e.g. `H100`. @default {} */
  gpus: z.record(z.string(), GpuPriceSchema).default({}),
  /** Other names of GPU types (upper-case), e.g. `{ "A10G": "A10", "H100!": "H100" }`. @default {} */
  gpuAliases: z.record(z.string(), z.string()).default({}),
  /** Multiplier of the whole bill for a broad region pin (a name without `-`, e.g. `us`). @default 1 */
  broadRegionMultiplier: z.number().positive().default(1),
  /** Multiplier of the whole bill for a narrow region pin (a name with `-`, e.g. `us-west`). @default 1 */
  narrowRegionMultiplier: z.number().positive().default(1),
  /** Multipliers for named regions (lower-case), taking precedence over broad/narrow. @default {} */
  regionMultipliers: z.record(z.string(), z.number().positive()).default({}),
});

/** A dated, versioned price table: prices per provider. */
export const PriceTableSchema = z.object({
  /** Version of the table; overrides append `+custom` unless they set their own. */
  version: z.string().min(1),
  /** Date from which the prices apply, `YYYY-MM-DD`. */
  effectiveDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "use YYYY-MM-DD"),
  /** Where the figures come from. */
  source: z.string().optional(),
  /** Prices per provider name (`modal`, `local`, ...). */
  providers: z.record(z.string(), ProviderPricesSchema),
});

/** A resolved price table. */
export type PriceTable = z.output<typeof PriceTableSchema>;
/** Prices of one provider, resolved. */
export type ProviderPrices = z.output<typeof ProviderPricesSchema>;
/** Price of one GPU type, resolved. */
export type GpuPrice = z.output<typeof GpuPriceSchema>;

/**
 * What users write to override prices: any subset of the table. Providers not in the default table must
 * give at least `cpuPerCoreSecondUsd` and `memoryPerGiBSecondUsd`.
 */
export const PriceTableOverrideSchema = z
  .object({
    version: z.string().min(1).optional(),
    effectiveDate: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, "use YYYY-MM-DD")
      .optional(),
    source: z.string().optional(),
    providers: z
      .record(
        z.string(),
        z
          .object({
            cpuPerCoreSecondUsd: usdRate.optional(),
            memoryPerGiBSecondUsd: usdRate.optional(),
            diskToMemoryRatio: z.number().positive().optional(),
            defaultCpuBurstCores: z.number().nonnegative().optional(),
            gpus: z
              .record(
                z.string(),
                z.object({
                  perSecondUsd: usdRate.optional(),
                  maxPerContainer: z.number().int().positive().optional(),
                }),
              )
              .optional(),
            gpuAliases: z.record(z.string(), z.string()).optional(),
            broadRegionMultiplier: z.number().positive().optional(),
            narrowRegionMultiplier: z.number().positive().optional(),
            regionMultipliers: z.record(z.string(), z.number().positive()).optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

/** A partial price table that overrides the defaults (from config or a JSON file). */
export type PriceTableOverride = z.input<typeof PriceTableOverrideSchema>;

const gpu = (perSecondUsd: number, maxPerContainer = 8): GpuPrice => ({ perSecondUsd, maxPerContainer });

/**
 * The default price table: Modal Sandbox rates as published on Modal's pricing page (checked Sept–Oct 2026),
 * and `local` and `docker` providers (sandboxes on your own machines) that cost nothing. Every figure can be
 * overridden.
 */
export const DEFAULT_PRICE_TABLE: PriceTable = deepFreeze({
  version: "2026-10-01.2",
  effectiveDate: "2026-10-01",
  source: "https://modal.com/pricing (Sandbox rates, checked 2026-10)",
  providers: {
    modal: {
      cpuPerCoreSecondUsd: 0.00003942,
      memoryPerGiBSecondUsd: 0.00000667,
      diskToMemoryRatio: 20,
      defaultCpuBurstCores: 16,
      gpus: {
        T4: gpu(0.000164),
        L4: gpu(0.000222),
        A10: gpu(0.000306, 4),
        L40S: gpu(0.000542),
        A100: gpu(0.000583),
        "A100-80GB": gpu(0.000694),
        "RTX-PRO-6000": gpu(0.000842),
        H100: gpu(0.001097),
        H200: gpu(0.001261),
        B200: gpu(0.001736),
        B300: gpu(0.001972),
      },
      // "A100-40GB", "H100!" pin hardware and "B200+" may run on B300: all billed as the base type.
      gpuAliases: { A10G: "A10", "A100-40GB": "A100", "H100!": "H100", "B200+": "B200" },
      // Modal's region-selection guide (modal.com/docs/guide/region-selection, the version that covers Sandboxes):
      // "Broad (e.g. `us`) 1.5x, Narrow (e.g. `us-west`) 1.75x"; the same in shared/notes/modal-pricing.md. An
      // older version of that page (Functions only) had "US/EU/UK/AP 1.25x, CA/SA/ME/MX/AF 2.5x"; override with
      // `regionMultipliers` if your bill still shows those.
      broadRegionMultiplier: 1.5,
      narrowRegionMultiplier: 1.75,
      regionMultipliers: {},
    },
    local: {
      cpuPerCoreSecondUsd: 0,
      memoryPerGiBSecondUsd: 0,
      diskToMemoryRatio: 20,
      defaultCpuBurstCores: 0,
      gpus: {},
      gpuAliases: {},
      broadRegionMultiplier: 1,
      narrowRegionMultiplier: 1,
      regionMultipliers: {},
    },
    // Containers on your own engine (runtime-docker): free like local unless you price your machines.
    docker: {
      cpuPerCoreSecondUsd: 0,
      memoryPerGiBSecondUsd: 0,
      diskToMemoryRatio: 20,
      defaultCpuBurstCores: 0,
      gpus: {},
      gpuAliases: {},
      broadRegionMultiplier: 1,
      narrowRegionMultiplier: 1,
      regionMultipliers: {},
    },
  },
});

function upperKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k.toUpperCase(), v]));
}

/**
 * Applies `override` on top of `base` (default: {@link DEFAULT_PRICE_TABLE}) and validates the result.
 * GPU names and aliases are upper-cased; region names lower-cased.
 *
 * @example
 * ```ts
 * const table = resolvePriceTable({ providers: { modal: { memoryPerGiBSecondUsd: 0.00000672 } } });
 * ```
 */
export function resolvePriceTable(
  override?: PriceTableOverride,
  base: PriceTable = DEFAULT_PRICE_TABLE,
): PriceTable {
  const parsed = override
    ? parseOrThrow(PriceTableOverrideSchema, override, "price table override")
    : undefined;
  const providers: Record<string, z.input<typeof ProviderPricesSchema>> = {};
  for (const [name, prices] of Object.entries(base.providers)) providers[name] = { ...prices };
  for (const [name, patch] of Object.entries(parsed?.providers ?? {})) {
    const current = providers[name];
    if (!current && (patch.cpuPerCoreSecondUsd === undefined || patch.memoryPerGiBSecondUsd === undefined)) {
      throw new InvalidArgumentError(
        `Price table override adds provider "${name}" without cpuPerCoreSecondUsd and memoryPerGiBSecondUsd: give both (0 for free).`,
        [`providers.${name}: missing cpuPerCoreSecondUsd or memoryPerGiBSecondUsd`],
      );
    }
    const gpus: Record<string, z.input<typeof GpuPriceSchema>> = { ...upperKeys(current?.gpus ?? {}) };
    for (const [type, g] of Object.entries(upperKeys(patch.gpus ?? {}))) {
      const existing = gpus[type];
      if (!existing && g.perSecondUsd === undefined) {
        throw new InvalidArgumentError(
          `Price table override adds GPU "${type}" to "${name}" without perSecondUsd.`,
          [`providers.${name}.gpus.${type}.perSecondUsd: required for a new GPU type`],
        );
      }
      gpus[type] = { ...existing, ...stripUndefined(g) } as z.input<typeof GpuPriceSchema>;
    }
    const { gpus: _g, gpuAliases, regionMultipliers, ...scalars } = patch;
    providers[name] = {
      ...current,
      ...stripUndefined(scalars),
      gpus,
      gpuAliases: { ...current?.gpuAliases, ...upperValues(upperKeys(gpuAliases ?? {})) },
      regionMultipliers: { ...current?.regionMultipliers, ...lowerKeys(regionMultipliers ?? {}) },
    } as z.input<typeof ProviderPricesSchema>;
  }
  const table = {
    version: parsed?.version ?? (parsed?.providers ? `${base.version}+custom` : base.version),
    effectiveDate: parsed?.effectiveDate ?? base.effectiveDate,
    ...((parsed?.source ?? base.source) ? { source: parsed?.source ?? base.source } : {}),
    providers,
  };
  const resolved = parseOrThrow(PriceTableSchema, table, "price table");
  for (const [name, p] of Object.entries(resolved.providers)) {
    for (const [alias, target] of Object.entries(p.gpuAliases)) {
      if (!p.gpus[target]) {
        throw new InvalidArgumentError(
          `GPU alias "${alias}" of provider "${name}" points at "${target}", which has no price.`,
          [`providers.${name}.gpuAliases.${alias}: unknown GPU type ${target}`],
        );
      }
    }
  }
  return resolved;
}

/**
 * Reads a price table override from a JSON file and resolves it on top of the defaults.
 * Throws NOT_FOUND for a missing file and INVALID_ARGUMENT for bad JSON or bad fields.
 */
export function loadPriceTableFile(path: string, base: PriceTable = DEFAULT_PRICE_TABLE): PriceTable {
  return resolvePriceTable(readPriceTableFile(path), base);
}

/**
 * Reads a price table override from a JSON file, unchecked (see {@link resolvePriceTable}).
 * Throws NOT_FOUND for a missing file and INVALID_ARGUMENT for bad JSON.
 */
export function readPriceTableFile(path: string): PriceTableOverride {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RuntimeError(
      "NOT_FOUND",
      `Cannot read price table file ${path}: check the path (pricesFile).`,
      {
        cause: err,
      },
    );
  }
  try {
    return JSON.parse(text) as PriceTableOverride;
  } catch (err) {
    throw new InvalidArgumentError(`Price table file ${path} is not valid JSON: ${(err as Error).message}`, [
      `pricesFile: invalid JSON`,
    ]);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
function upperValues(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, v.toUpperCase()]));
}
function lowerKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k.toLowerCase(), v]));
}
