import { definePlugin, parseOrThrow } from "@agent-runtime/runtime-core";
import type { SecretsOptions } from "./options.js";
import { SecretsOptionsSchema } from "./options.js";
import type { ResolverDeps } from "./resolver.js";
import { ProviderSecretsResolver } from "./resolver.js";

/**
 * The `secrets` plugin: its instance is a {@link ProviderSecretsResolver} (a runtime-core
 * `SecretsResolver`) over the configured providers.
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
  create: (options, context) => new ProviderSecretsResolver(options, { logger: context.logger }),
});

/**
 * Builds a secrets resolver from options (parsed once; every invalid field reported as `path: message`).
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
  return new ProviderSecretsResolver(parseOrThrow(SecretsOptionsSchema, options, "secrets options"), deps);
}
