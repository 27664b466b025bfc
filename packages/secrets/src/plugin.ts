import {
  createPluginInstance,
  definePlugin,
  noopRedactor,
  type PluginContext,
  quietLogger,
} from "@agent-runtime/runtime-core";
import type { ResolvedSecretsOptions, SecretsOptions } from "./options.js";
import { SecretsOptionsSchema } from "./options.js";
import type { ResolverDeps } from "./resolver.js";
import { ProviderSecretsResolver } from "./resolver.js";

/** Guessed option names and the option to use (the plugin's `renamedOptions`). */
export const SECRETS_RENAMED_OPTIONS: Readonly<Record<string, string>> = {
  provider: "providers",
  minLength: "minRedactLength",
  gitCredentials: "git",
};

/**
 * Checks the schema cannot express, run once every field is valid (the plugin's `validate`): the same Modal
 * secret (name and environment) listed twice. Each issue as `path: message`.
 */
export function validateSecretsOptions(options: ResolvedSecretsOptions): string[] {
  const issues: string[] = [];
  const seen = new Map<string, number>();
  options.providers.forEach((provider, i) => {
    if (provider.type !== "modal") return;
    const key = `${provider.environment ?? ""}\u0000${provider.name}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else
      issues.push(
        `providers[${i}].name: the Modal secret "${provider.name}" is already listed as providers[${first}]; list it once with every key in its requiredKeys`,
      );
  });
  return issues;
}

/**
 * The `secrets` plugin: renamed options, the schema, then {@link validateSecretsOptions}; its instance is a
 * {@link ProviderSecretsResolver}, a runtime-core `SecretsPlugin` whose `redactor` knows every value it has
 * resolved so far.
 *
 * @example
 * ```ts
 * registry.register(secretsPlugin);
 * const secrets = registry.create("secrets", "secrets", { providers: [{ type: "env" }] }, context);
 * ```
 */
export const secretsPlugin = definePlugin({
  name: "secrets",
  kind: "secrets",
  optionsSchema: SecretsOptionsSchema,
  renamedOptions: SECRETS_RENAMED_OPTIONS,
  validate: validateSecretsOptions,
  create: (options, context) => new ProviderSecretsResolver(options, { logger: context.logger }),
});

/**
 * Builds a secrets resolver from options through the plugin's pipeline (renamed options, the schema with every
 * invalid field as `path: message`, then `validate`), exactly as a registry would. `deps.stores` adds stores of
 * your own (a vault client, say), read after the configured providers.
 *
 * @example
 * ```ts
 * const resolver = secretsResolver({
 *   providers: [
 *     { type: "env", prefix: "SANDBOX_ENV_", names: ["GITHUB_TOKEN"] },
 *     { type: "encrypted-file", path: "~/.config/agent-runtime/secrets.enc" },
 *     { type: "modal", name: "my-api-keys", requiredKeys: ["OPENAI_API_KEY"] },
 *   ],
 * });
 * const secrets = await resolver.resolve({ sessionId: "s1", required: ["GITHUB_TOKEN"] });
 * spawn("bash", [], { env: { ...secrets.env } });
 * secrets.redactor.redact(output);
 * ```
 */
export function secretsResolver(
  options: SecretsOptions = {},
  deps: ResolverDeps = {},
): ProviderSecretsResolver {
  const context: PluginContext = { logger: deps.logger ?? quietLogger, redactor: noopRedactor };
  const plugin = deps.stores?.length
    ? {
        ...secretsPlugin,
        create: (resolved: ResolvedSecretsOptions, ctx: PluginContext) =>
          new ProviderSecretsResolver(resolved, { logger: ctx.logger, stores: deps.stores }),
      }
    : secretsPlugin;
  return createPluginInstance(plugin, options, context, "secrets options");
}
