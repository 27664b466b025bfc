import type { z } from "zod";
import type { CostPlugin, PluginContext, SecretsPlugin } from "./context.js";
import { InvalidArgumentError, RuntimeError } from "./errors.js";
import type { RuntimeProvider } from "./runtime/types.js";
import { parseOrThrow, renamedOptionIssues } from "./validation.js";

/**
 * What each plugin kind creates. A registry's `create("runtime", …)` returns a {@link RuntimeProvider},
 * `create("secrets", …)` a {@link SecretsPlugin}, `create("cost", …)` a {@link CostPlugin}.
 */
export interface PluginInstances {
  runtime: RuntimeProvider;
  secrets: SecretsPlugin;
  cost: CostPlugin;
}

/** Plugin kinds a registry holds. */
export type PluginKind = keyof PluginInstances;

/**
 * A plugin: a name, a kind, an options schema, and a factory that receives parsed, validated options and the
 * shared context. Every way of building a plugin's instance (a registry, a host's config, the package's own
 * factory function) runs {@link resolvePluginOptions}: renamed options, then the schema, then `validate`.
 */
export interface Plugin<
  TKind extends PluginKind = PluginKind,
  TSchema extends z.ZodType = z.ZodType,
  TInstance extends PluginInstances[TKind] = PluginInstances[TKind],
> {
  readonly name: string;
  readonly kind: TKind;
  readonly optionsSchema: TSchema;
  /**
   * Old option names -> the option to use now (a dotted path for a moved one), e.g. `{ workspace: "workspaceDir" }`.
   * Reported before the schema runs, one issue per key: `workspace: this option is now "workspaceDir"`.
   */
  readonly renamedOptions?: Readonly<Record<string, string>>;
  /**
   * Semantic checks the schema cannot express (a path that must exist, options that exclude each other).
   * Returns issues as `path: message` (empty: valid); they are thrown as one INVALID_ARGUMENT.
   */
  validate?(options: z.output<TSchema>): readonly string[];
  create(options: z.output<TSchema>, context: PluginContext): TInstance;
}

/** A plugin of any kind (what registries hold). */
export type AnyPlugin = { [K in PluginKind]: Plugin<K, z.ZodType, PluginInstances[K]> }[PluginKind];

/**
 * Defines a plugin with inference of its options and instance types; the instance must be the kind's type.
 *
 * @example
 * ```ts
 * export const echoPlugin = definePlugin({
 *   name: "echo", kind: "runtime",
 *   optionsSchema: z.object({ greeting: z.string().default("hi") }),
 *   create: (options, ctx) => new EchoProvider(options.greeting, ctx.logger),
 * });
 * ```
 */
export function definePlugin<
  const TKind extends PluginKind,
  TSchema extends z.ZodType,
  TInstance extends PluginInstances[TKind],
>(plugin: Plugin<TKind, TSchema, TInstance>): Plugin<TKind, TSchema, TInstance> {
  if (!/^[a-z0-9][a-z0-9._/@-]*$/i.test(plugin.name)) {
    throw new InvalidArgumentError(
      `Invalid plugin name ${JSON.stringify(plugin.name)}: use letters, digits, . _ - / @`,
      [`name: invalid`],
    );
  }
  if (!Object.hasOwn(INSTANCE_CHECKS, plugin.kind)) {
    throw new InvalidArgumentError(
      `Invalid plugin kind ${JSON.stringify(plugin.kind)} for "${plugin.name}": use one of ${Object.keys(INSTANCE_CHECKS).join(", ")}.`,
      ["kind: invalid"],
    );
  }
  return Object.freeze({ ...plugin });
}

/** The options type users write for a plugin. */
export type PluginOptions<TPlugin> = TPlugin extends { optionsSchema: infer S extends z.ZodType }
  ? z.input<S>
  : never;
/** The instance type a plugin creates. */
export type PluginInstance<TPlugin> = TPlugin extends { create(...args: never[]): infer I } ? I : never;

/**
 * Runs a plugin's option pipeline once: renamed options (each named with its replacement), the schema (every
 * issue as `path: message`), then the plugin's `validate`. Throws one INVALID_ARGUMENT listing every issue,
 * headed by `what` (default: `options for <kind> plugin "<name>"`).
 */
export function resolvePluginOptions<TSchema extends z.ZodType>(
  plugin: Pick<
    Plugin<PluginKind, TSchema, never>,
    "name" | "kind" | "optionsSchema" | "renamedOptions" | "validate"
  >,
  options: unknown,
  what = `options for ${plugin.kind} plugin "${plugin.name}"`,
): z.output<TSchema> {
  const input = options ?? {};
  const renamed = renamedOptionIssues(input, plugin.renamedOptions ?? {});
  if (renamed.length > 0)
    throw new InvalidArgumentError(`Invalid ${what}:\n  ${renamed.join("\n  ")}`, renamed);
  const parsed = parseOrThrow(plugin.optionsSchema, input, what);
  const issues = plugin.validate?.(parsed) ?? [];
  if (issues.length > 0)
    throw new InvalidArgumentError(`Invalid ${what}:\n  ${issues.join("\n  ")}`, [...issues]);
  return parsed;
}

/**
 * Builds a plugin's instance from options as users write them: {@link resolvePluginOptions}, then `create`,
 * then a check that the instance has the kind's methods. Package factories (`localRuntime()`, `costGuard()`…)
 * and registries both call this, so both accept and refuse the same options with the same messages.
 */
export function createPluginInstance<
  TKind extends PluginKind,
  TSchema extends z.ZodType,
  TInstance extends PluginInstances[TKind],
>(
  plugin: Plugin<TKind, TSchema, TInstance>,
  options: unknown,
  context: PluginContext,
  what?: string,
): TInstance {
  const parsed = resolvePluginOptions(plugin, options, what);
  const instance = plugin.create(parsed, context);
  assertPluginInstance(plugin.kind, plugin.name, instance);
  return instance;
}

const INSTANCE_CHECKS: Record<PluginKind, readonly string[]> = {
  runtime: ["create", "attach", "close"],
  secrets: ["resolve"],
  cost: ["reserve", "activate", "heartbeat", "settle"],
};

/** Throws INTERNAL when `instance` lacks a method its kind requires (a plugin built against another contract). */
export function assertPluginInstance<TKind extends PluginKind>(
  kind: TKind,
  name: string,
  instance: unknown,
): asserts instance is PluginInstances[TKind] {
  const required = INSTANCE_CHECKS[kind];
  const missing =
    typeof instance === "object" && instance !== null
      ? required.filter((m) => typeof (instance as Record<string, unknown>)[m] !== "function")
      : required;
  if (missing.length > 0) {
    throw new RuntimeError(
      "INTERNAL",
      `The ${kind} plugin "${name}" created an instance without ${missing.join(", ")}: a ${kind} plugin must create an object with ${required.join(", ")}.`,
    );
  }
}

/** True when `value` looks like a plugin (what a module that exports plugins is scanned for). */
export function isPlugin(value: unknown): value is AnyPlugin {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<Plugin>;
  return (
    typeof v.name === "string" &&
    typeof v.kind === "string" &&
    Object.hasOwn(INSTANCE_CHECKS, v.kind) &&
    typeof v.create === "function" &&
    typeof (v.optionsSchema as { safeParse?: unknown } | undefined)?.safeParse === "function"
  );
}

/**
 * An explicit plugin registry: registering a name twice is an error, and a lookup miss lists the names
 * that exist. No global state: hosts build one and pass it around.
 */
export class PluginRegistry {
  readonly #plugins = new Map<string, AnyPlugin>();

  /** Registers a plugin; throws ALREADY_EXISTS for a duplicate `kind:name`. */
  register(plugin: AnyPlugin): this {
    const key = `${plugin.kind}:${plugin.name}`;
    if (this.#plugins.has(key)) {
      throw new RuntimeError(
        "ALREADY_EXISTS",
        `A ${plugin.kind} plugin named "${plugin.name}" is already registered.`,
      );
    }
    this.#plugins.set(key, plugin);
    return this;
  }

  /** True when a plugin of `kind` named `name` is registered. */
  has(kind: PluginKind, name: string): boolean {
    return this.#plugins.has(`${kind}:${name}`);
  }

  /** Names registered for `kind`, sorted. */
  names(kind: PluginKind): string[] {
    return [...this.#plugins.values()]
      .filter((p) => p.kind === kind)
      .map((p) => p.name)
      .sort();
  }

  /** Returns the plugin or throws NOT_FOUND listing the registered names of that kind. */
  get<TKind extends PluginKind>(kind: TKind, name: string): Plugin<TKind, z.ZodType, PluginInstances[TKind]> {
    const plugin = this.#plugins.get(`${kind}:${name}`);
    if (!plugin) {
      const known = this.names(kind);
      throw new RuntimeError(
        "NOT_FOUND",
        `No ${kind} plugin named "${name}". Registered ${kind} plugins: ${known.length ? known.join(", ") : "(none)"}.`,
      );
    }
    return plugin as unknown as Plugin<TKind, z.ZodType, PluginInstances[TKind]>;
  }

  /**
   * Builds the instance of the `kind` plugin named `name` through {@link createPluginInstance}: renamed options,
   * schema, `validate`, `create`, and a check of the instance's methods.
   */
  create<TKind extends PluginKind>(
    kind: TKind,
    name: string,
    options: unknown,
    context: PluginContext,
  ): PluginInstances[TKind] {
    return createPluginInstance(this.get(kind, name), options, context);
  }
}
