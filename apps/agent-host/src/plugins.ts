import { resolve } from "node:path";
import { costGuardPlugin } from "@agent-runtime/cost-guard";
import {
  type AnyPlugin,
  isPlugin,
  type PluginKind,
  PluginRegistry,
  RuntimeError,
} from "@agent-runtime/runtime-core";
import { dockerRuntimePlugin } from "@agent-runtime/runtime-docker";
import { localRuntimePlugin } from "@agent-runtime/runtime-local";
import { secretsPlugin } from "@agent-runtime/secrets";

/** Plugin names that live in a package loaded on first use (heavy SDKs stay unloaded until asked for). */
export const LAZY_PLUGIN_MODULES: Readonly<Record<string, string>> = {
  "runtime:modal": "@agent-runtime/runtime-modal",
};

/**
 * A registry with the plugins bundled with the host: `local` and `docker` (runtimes), `secrets`, `cost-guard`.
 * The docker plugin connects to its engine only when a provider is created from it.
 */
export function builtinRegistry(): PluginRegistry {
  return new PluginRegistry()
    .register(localRuntimePlugin)
    .register(dockerRuntimePlugin)
    .register(secretsPlugin)
    .register(costGuardPlugin);
}

/** Imports a module by name; separated so the bundler leaves it as a runtime import. */
type Importer = (specifier: string) => Promise<Record<string, unknown>>;
const defaultImporter: Importer = (specifier) => import(specifier) as Promise<Record<string, unknown>>;

/**
 * Makes sure `registry` holds a `kind` plugin named `name`: built-ins are there already; `modal` loads
 * `@agent-runtime/runtime-modal`; any other name is imported as a module (a package name, an absolute path, or
 * a path starting with `./` or `../`, relative to the working directory) and the plugins it exports are
 * registered. Returns the name to look up (a module's single plugin of that kind may have another name).
 * Throws UNSUPPORTED when the module cannot be loaded or exports no plugin of that kind.
 */
export async function ensurePlugin(
  registry: PluginRegistry,
  kind: PluginKind,
  name: string,
  importer: Importer = defaultImporter,
): Promise<string> {
  if (registry.has(kind, name)) return name;
  // A relative file path is the user's, relative to where they run the host (not to this module).
  const specifier =
    LAZY_PLUGIN_MODULES[`${kind}:${name}`] ?? (/^\.\.?\//.test(name) ? resolve(process.cwd(), name) : name);
  let mod: Record<string, unknown>;
  try {
    mod = await importer(specifier);
  } catch (cause) {
    const known = registry.names(kind).join(", ");
    throw new RuntimeError(
      "UNSUPPORTED",
      `The ${kind} plugin "${name}" is not available: module ${specifier} could not be loaded (${(cause as Error).message.split("\n")[0]}). ` +
        `Built-in ${kind} plugins: ${known || "(none)"}; for a third-party plugin install its package and give its module name.`,
      { cause },
    );
  }
  const exported = new Set<AnyPlugin>();
  for (const value of [mod.default, ...Object.values(mod)])
    if (isPlugin(value) && value.kind === kind) exported.add(value);
  for (const plugin of exported) if (!registry.has(plugin.kind, plugin.name)) registry.register(plugin);
  if (registry.has(kind, name)) return name;
  const plugins = [...exported];
  if (plugins.length === 1) return plugins[0]!.name;
  if (plugins.length === 0) {
    throw new RuntimeError(
      "UNSUPPORTED",
      `The ${kind} plugin "${name}" is not available: module ${specifier} exports no ${kind} plugin yet (export one made with definePlugin({ kind: "${kind}", ... })).`,
    );
  }
  throw new RuntimeError(
    "INVALID_ARGUMENT",
    `Module ${specifier} exports several ${kind} plugins (${plugins.map((p) => p.name).join(", ")}); name one of them as the plugin.`,
  );
}
