import { z } from "zod";

/** A variable name as a sandbox environment accepts it: letters, digits, `_`, not starting with a digit. */
export const SecretNameSchema = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    "must be a variable name: letters, digits and _, not starting with a digit",
  );

const requiredKeys = z.array(SecretNameSchema).default([]);

/** Reads variables from the host environment. */
export const EnvProviderSchema = z.strictObject({
  type: z.literal("env"),
  /**
   * Every host variable starting with this prefix is passed with the prefix removed
   * (`SANDBOX_ENV_FOO` -> `FOO`, as OpenHands does). An empty string disables prefix mapping.
   * @default "SANDBOX_ENV_"
   */
  prefix: z.string().default("SANDBOX_ENV_"),
  /**
   * Host variables passed under the same name (for example `GITHUB_TOKEN`). Absent ones are skipped
   * unless listed in `required`.
   * @default []
   */
  names: z.array(SecretNameSchema).default([]),
  /**
   * Explicit renames, sandbox name -> host name (for example `{ GITHUB_TOKEN: "CI_GITHUB_TOKEN" }`).
   * @default {}
   */
  mapping: z.record(SecretNameSchema, z.string().min(1)).default({}),
  /**
   * Sandbox names this provider must supply; a missing one fails `resolve()` with an error naming the key
   * and this provider.
   * @default []
   */
  required: requiredKeys,
  /**
   * The environment to read instead of `process.env` (tests, or a host that filters its own environment).
   * @default process.env
   */
  source: z.record(z.string(), z.string().optional()).optional(),
});

/** Reads a dotenv file (`KEY=value`, `export KEY=...`, quotes, multi-line double-quoted values). */
export const DotenvProviderSchema = z.strictObject({
  type: z.literal("dotenv"),
  /** Path of the file (relative paths resolve against the process working directory). */
  path: z.string().min(1),
  /**
   * When true a missing file is an empty provider instead of a NOT_FOUND error.
   * @default false
   */
  optional: z.boolean().default(false),
  /**
   * Keys this file must define; a missing one fails `resolve()` naming the key and the file.
   * @default []
   */
  required: requiredKeys,
});

/** Fixed values held in memory (tests, or values a host fetched itself). */
export const MemoryProviderSchema = z.strictObject({
  type: z.literal("memory"),
  /** Name -> value. */
  values: z.record(SecretNameSchema, z.string()),
  /**
   * Keys that must be present in `values`.
   * @default []
   */
  required: requiredKeys,
});

/** Where the key of an encrypted store comes from. */
export const EncryptionKeySourceSchema = z.strictObject({
  /**
   * Environment variable holding a 32-byte key as base64 (44 chars) or hex (64 chars).
   * @default "AGENT_RUNTIME_SECRETS_KEY"
   */
  keyEnv: z.string().min(1).default("AGENT_RUNTIME_SECRETS_KEY"),
  /**
   * A file holding the key (base64, hex or 32 raw bytes); used when set, else the variable in `keyEnv`,
   * else the file named by `AGENT_RUNTIME_SECRETS_KEY_FILE`.
   */
  keyFile: z.string().min(1).optional(),
});

/** An AES-256-GCM encrypted file written by `agent-runtime-secrets set` or {@link EncryptedFileStore}. */
export const EncryptedFileProviderSchema = z.strictObject({
  type: z.literal("encrypted-file"),
  /** Path of the store file. */
  path: z.string().min(1),
  ...EncryptionKeySourceSchema.shape,
  /**
   * Only these names are passed to sandboxes; absent: every name in the store.
   */
  names: z.array(SecretNameSchema).optional(),
  /**
   * When true a missing file is an empty provider instead of a NOT_FOUND error.
   * @default false
   */
  optional: z.boolean().default(false),
  /**
   * Keys the store must hold; a missing one fails `resolve()` naming the key and the file.
   * @default []
   */
  required: requiredKeys,
});

/**
 * A Modal named secret (`modal secret create NAME ...`). It carries no values here: runtime-modal resolves it
 * with `client.secrets.fromName(name, { requiredKeys, environment })`.
 */
export const ModalSecretProviderSchema = z.strictObject({
  type: z.literal("modal"),
  /** The secret's name in Modal. */
  name: z.string().min(1),
  /**
   * Keys Modal must find in the secret; Modal fails the lookup when one is missing.
   * @default []
   */
  requiredKeys: requiredKeys,
  /** Modal environment name; absent: the profile's default environment. */
  environment: z.string().min(1).optional(),
});

/** One configured provider, discriminated by `type`. */
export const ProviderSchema = z.discriminatedUnion("type", [
  EnvProviderSchema,
  DotenvProviderSchema,
  MemoryProviderSchema,
  EncryptedFileProviderSchema,
  ModalSecretProviderSchema,
]);

/** Git credential configuration for provider tokens. */
export const GitCredentialsOptionsSchema = z.strictObject({
  /**
   * When true and a provider token is resolved, `ResolvedSecrets.files` carries a git credential helper
   * and a `~/.gitconfig` that uses it.
   * @default true
   */
  enabled: z.boolean().default(true),
  /**
   * Token variable -> URLs it authenticates. Defaults cover the public hosts; add self-hosted ones here
   * (for example `{ GITLAB_TOKEN: ["https://gitlab.example.com"] }`); a listed variable replaces its default.
   * @default { GITHUB_TOKEN: ["https://github.com"], GITLAB_TOKEN: ["https://gitlab.com"], BITBUCKET_TOKEN: ["https://bitbucket.org"] }
   */
  hosts: z.record(SecretNameSchema, z.array(z.url()).min(1)).default({}),
  /**
   * `user.name` written to `~/.gitconfig`; absent: none.
   */
  userName: z.string().min(1).optional(),
  /**
   * `user.email` written to `~/.gitconfig`; absent: none.
   */
  userEmail: z.string().min(1).optional(),
});

/** Options of {@link secretsResolver} and the `secrets` plugin. */
export const SecretsOptionsSchema = z.strictObject({
  /**
   * Providers, read in order; when two define the same name, the later one wins.
   * @default [{ type: "env", prefix: "SANDBOX_ENV_" }]
   */
  providers: z.array(ProviderSchema).prefault([{ type: "env" }]),
  /**
   * Values shorter than this are not redacted (too many false positives) and are reported with a warning
   * naming the variable. They are still injected.
   * @default 6
   */
  minRedactLength: z.number().int().min(1).default(6),
  /**
   * Text that replaces a secret in redacted output.
   * @default "[redacted]"
   */
  placeholder: z.string().default("[redacted]"),
  /**
   * Git credentials for `GITHUB_TOKEN`, `GITLAB_TOKEN`, `BITBUCKET_TOKEN`.
   * @default { enabled: true }
   */
  git: GitCredentialsOptionsSchema.prefault({}),
});

/** Options users write for {@link secretsResolver} and the `secrets` plugin. */
export type SecretsOptions = z.input<typeof SecretsOptionsSchema>;
/** Options after parsing, with defaults applied. */
export type ResolvedSecretsOptions = z.output<typeof SecretsOptionsSchema>;
/** One provider entry as users write it. */
export type ProviderOptions = z.input<typeof ProviderSchema>;
/** One provider entry after parsing. */
export type ResolvedProviderOptions = z.output<typeof ProviderSchema>;
/** Git credential options as users write them. */
export type GitCredentialsOptions = z.input<typeof GitCredentialsOptionsSchema>;
/** Git credential options after parsing. */
export type ResolvedGitCredentialsOptions = z.output<typeof GitCredentialsOptionsSchema>;
/** Where an encrypted store's key comes from, as users write it. */
export type EncryptionKeySource = z.input<typeof EncryptionKeySourceSchema>;
