import type { z } from "zod";
import type { PluginContext } from "./context.js";
import { InvalidArgumentError, RuntimeError } from "./errors.js";
import { parseOrThrow } from "./validation.js";

/** Plugin kinds a registry holds. */
export type PluginKind = "runtime" | "secrets" | "cost";

/**
 * A plugin: a name, a kind, an options schema, and a factory that receives parsed options and the
 * shared context. `TOptions` is the schema's input (what users write); `TInstance` is what `create` returns.
 */
export interface Plugin<
  TKind extends PluginKind = PluginKind,
  TSchema extends z.ZodType = z.ZodType,
  TInstance = unknown,
> {
  readonly name: string;
  readonly kind: TKind;
  readonly optionsSchema: TSchema;
  create(options: z.output<TSchema>, context: PluginContext): TInstance;
}

/**
 * Defines a plugin with inference of its options and instance types.
 *
 * @example
 * ```ts
 * export const echoPlugin = definePlugin({
 *   name: "echo", kind: "runtime",
 *   optionsSchema: z.object({ greeting: z.string().default("hi") }),
 *   create: (options, ctx) => new EchoRuntime(options.greeting, ctx.logger),
 * });
 * ```
 */
export function definePlugin<const TKind extends PluginKind, TSchema extends z.ZodType, TInstance>(
  plugin: Plugin<TKind, TSchema, TInstance>,
): Plugin<TKind, TSchema, TInstance> {
  if (!/^[a-z0-9][a-z0-9._/@-]*$/i.test(plugin.name)) {
    throw new InvalidArgumentError(
      `Invalid plugin name ${JSON.stringify(plugin.name)}: use letters, digits, . _ - / @`,
      [`name: invalid`],
    );
  }
  return Object.freeze({ ...plugin });
}

/** The options type users write for a plugin. */
export type PluginOptions<TPlugin> =
  TPlugin extends Plugin<PluginKind, infer S, unknown> ? z.input<S> : never;
/** The instance type a plugin creates. */
export type PluginInstance<TPlugin> = TPlugin extends Plugin<PluginKind, z.ZodType, infer I> ? I : never;

/**
 * An explicit plugin registry: registering a name twice is an error, and a lookup miss lists the names
 * that exist. No global state: hosts build one and pass it around.
 */
export class PluginRegistry {
  readonly #plugins = new Map<string, Plugin>();

  /** Registers a plugin; throws ALREADY_EXISTS for a duplicate `kind:name`. */
  register(plugin: Plugin): this {
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
  get(kind: PluginKind, name: string): Plugin {
    const plugin = this.#plugins.get(`${kind}:${name}`);
    if (!plugin) {
      const known = this.names(kind);
      throw new RuntimeError(
        "NOT_FOUND",
        `No ${kind} plugin named "${name}". Registered ${kind} plugins: ${known.length ? known.join(", ") : "(none)"}.`,
      );
    }
    return plugin;
  }

  /**
   * Validates `options` against the plugin's schema (every issue reported as `path: message`) and calls
   * `create` once.
   */
  create(kind: PluginKind, name: string, options: unknown, context: PluginContext): unknown {
    const plugin = this.get(kind, name);
    const parsed = parseOrThrow(plugin.optionsSchema, options ?? {}, `options for ${kind} plugin "${name}"`);
    return plugin.create(parsed, context);
  }
}
