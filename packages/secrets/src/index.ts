/**
 * @agent-runtime/secrets: secret providers, injection into sandboxes (environment and git credentials),
 * and redaction of secret values from observations, logs, errors and events.
 */

/** This package's name. */
export const PACKAGE_NAME = "@agent-runtime/secrets";

// Errors
export { toSecretsError } from "./errors.js";
export type { GitCredentialFilesOptions, SandboxFile } from "./git-credentials.js";
// Injection: git credentials
export {
  GIT_CREDENTIALS_CONFIG_PATH,
  GIT_GLOBAL_CONFIG_PATH,
  GIT_HELPER_PATH,
  GIT_PROVIDER_TOKENS,
  gitCredentialFiles,
  sandboxFilePaths,
} from "./git-credentials.js";
export type {
  EncryptionKeySource,
  GitCredentialsOptions,
  ProviderOptions,
  ResolvedGitCredentialsOptions,
  ResolvedProviderOptions,
  ResolvedSecretsOptions,
  SecretsOptions,
} from "./options.js";
// Options
export {
  DotenvProviderSchema,
  EncryptedFileProviderSchema,
  EnvProviderSchema,
  GitCredentialsOptionsSchema,
  MemoryProviderSchema,
  ModalSecretProviderSchema,
  ProviderSchema,
  SecretNameSchema,
  SecretsOptionsSchema,
} from "./options.js";
export { defaultStorePath, STORE_FILE_ENV } from "./paths.js";
// Plugin and resolver
export {
  SECRETS_RENAMED_OPTIONS,
  secretsPlugin,
  secretsResolver,
  validateSecretsOptions,
} from "./plugin.js";
export { DotenvStore } from "./providers/dotenv.js";
export { parseDotenv } from "./providers/dotenv-parse.js";
export type { EnvStoreOptions } from "./providers/env.js";
// Providers
export { EnvStore } from "./providers/env.js";
export { MemoryStore } from "./providers/memory.js";
export type { SecretStore } from "./providers/types.js";
export { encodedForms } from "./redaction/forms.js";
export { hiddenRecord, REDACTED } from "./redaction/hidden.js";
export { redactLogger } from "./redaction/logger.js";
export type { RedactionStream, RedactorOptions, SecretRedactor } from "./redaction/redactor.js";
// Redaction
export { createRedactor, MutableRedactor } from "./redaction/redactor.js";
export { redactingTransform } from "./redaction/transform.js";
export type { MissingSecret, ResolvedSecretSet, ResolverDeps } from "./resolver.js";
export { ProviderSecretsResolver } from "./resolver.js";
export { writeFileAtomic } from "./store/atomic-write.js";
export type { EncryptedFileStoreOptions } from "./store/encrypted-file-store.js";
// Encrypted store
export { EncryptedFileStore } from "./store/encrypted-file-store.js";
export type { KeyLookup, StoreKey } from "./store/key.js";
export { DEFAULT_KEY_ENV, DEFAULT_KEY_FILE_ENV, decodeKey, generateKey, loadKey } from "./store/key.js";
