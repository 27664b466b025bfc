import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { inspect } from "node:util";
import type { Logger } from "@agent-runtime/runtime-core";
import { quietLogger, RuntimeError } from "@agent-runtime/runtime-core";
import { z } from "zod";
import { toSecretsError } from "../errors.js";
import { SecretNameSchema } from "../options.js";
import { hostPath } from "../paths.js";
import type { SecretStore } from "../providers/types.js";
import { writeFileAtomic } from "./atomic-write.js";
import type { StoreKey } from "./key.js";
import { loadKey } from "./key.js";

const FORMAT = "agent-runtime-secrets";
const VERSION = 1;

const EnvelopeSchema = z.object({
  format: z.literal(FORMAT),
  version: z.number().int(),
  cipher: z.literal("aes-256-gcm"),
  key: z.string().regex(/^[0-9a-f]{16}$/),
  iv: z.base64(),
  tag: z.base64(),
  data: z.base64(),
});
const PayloadSchema = z.object({ secrets: z.record(z.string(), z.string()) });

/** Options of {@link EncryptedFileStore}. */
export interface EncryptedFileStoreOptions {
  /** Path of the store file. */
  path: string;
  /** A key file (base64, hex or 32 raw bytes). Takes precedence over `keyEnv`. */
  keyFile?: string | undefined;
  /** Variable holding the key. @default "AGENT_RUNTIME_SECRETS_KEY" */
  keyEnv?: string | undefined;
  /** Environment to read the key variable from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Receives warnings (a key file readable by others). @default quietLogger */
  logger?: Logger;
}

/**
 * A file of secrets encrypted with AES-256-GCM (names and values both encrypted; a fresh 12-byte IV per
 * write; the header is authenticated). Writes are atomic (temp file, fsync, rename) and the file is mode
 * 0600. A modified file fails with FAILED_PRECONDITION; a different key with UNAUTHORIZED.
 *
 * One writer at a time: two concurrent `set`s each rewrite the whole file, and the last rename wins.
 *
 * @example
 * ```ts
 * const store = new EncryptedFileStore({ path: "secrets.enc" }); // key from $AGENT_RUNTIME_SECRETS_KEY
 * await store.set("GITHUB_TOKEN", token);
 * await store.list(); // ["GITHUB_TOKEN"]
 * ```
 */
export class EncryptedFileStore implements SecretStore {
  /** Absolute path of the store file. */
  readonly path: string;
  readonly #options: EncryptedFileStoreOptions;
  readonly #logger: Logger;
  #key: StoreKey | undefined;

  constructor(options: EncryptedFileStoreOptions) {
    this.path = hostPath(options.path);
    this.#options = options;
    this.#logger = options.logger ?? quietLogger;
  }

  /** `encrypted-file:<path>` (safe to log). */
  get label(): string {
    return `encrypted-file:${this.path}`;
  }

  /** Every secret in the store; NOT_FOUND when the file does not exist. */
  async load(): Promise<Record<string, string>> {
    const secrets = await this.#read();
    if (secrets === undefined) {
      throw new RuntimeError(
        "NOT_FOUND",
        `The encrypted secrets store ${this.path} does not exist. Create it with \`agent-runtime-secrets set NAME --store ${this.path}\`.`,
      );
    }
    return secrets;
  }

  /** True when the store file exists. */
  async exists(): Promise<boolean> {
    try {
      await readFile(this.path);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return false;
      throw toSecretsError(err, `read the secrets store ${this.path}`);
    }
  }

  /** Names in the store, sorted (an empty list when the file does not exist). */
  async list(): Promise<string[]> {
    return Object.keys((await this.#read()) ?? {}).sort();
  }

  /** The value of `name`, or undefined. */
  async get(name: string): Promise<string | undefined> {
    const secrets = (await this.#read()) ?? {};
    return Object.hasOwn(secrets, name) ? secrets[name] : undefined;
  }

  /** Sets `name` (creating the store if needed) and rewrites the file atomically. */
  async set(name: string, value: string): Promise<void> {
    const parsed = SecretNameSchema.safeParse(name);
    if (!parsed.success) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `Invalid secret name ${JSON.stringify(name)}: use letters, digits and _, not starting with a digit.`,
      );
    }
    const secrets = (await this.#read()) ?? {};
    secrets[name] = value;
    await this.#write(secrets);
  }

  /** Removes `name`; returns false when it was not there (the file is then left untouched). */
  async delete(name: string): Promise<boolean> {
    const secrets = (await this.#read()) ?? {};
    if (!Object.hasOwn(secrets, name)) return false;
    delete secrets[name];
    await this.#write(secrets);
    return true;
  }

  async #keyOnce(): Promise<StoreKey> {
    this.#key ??= await loadKey({
      keyFile: this.#options.keyFile,
      keyEnv: this.#options.keyEnv,
      ...(this.#options.env ? { env: this.#options.env } : {}),
      logger: this.#logger,
    });
    return this.#key;
  }

  async #read(): Promise<Record<string, string> | undefined> {
    let raw: string;
    try {
      raw = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return undefined;
      throw toSecretsError(err, `read the secrets store ${this.path}`);
    }
    const key = await this.#keyOnce();
    let envelope: z.output<typeof EnvelopeSchema>;
    try {
      envelope = EnvelopeSchema.parse(JSON.parse(raw));
    } catch {
      throw this.#integrityError(
        "it is not a valid agent-runtime secrets file (damaged, or not written by this tool)",
      );
    }
    if (envelope.version !== VERSION) {
      throw new RuntimeError(
        "UNSUPPORTED",
        `The secrets store ${this.path} has format version ${envelope.version}; this version of @agent-runtime/secrets reads version ${VERSION}. Upgrade the package.`,
      );
    }
    if (envelope.key !== key.fingerprint) {
      throw new RuntimeError(
        "UNAUTHORIZED",
        `The secrets store ${this.path} was written with a different key (fingerprint ${envelope.key}); the key given has fingerprint ${key.fingerprint}. Use the key the store was created with.`,
      );
    }
    let plain: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key.bytes, Buffer.from(envelope.iv, "base64"));
      decipher.setAAD(aad(key.fingerprint));
      decipher.setAuthTag(Buffer.from(envelope.tag, "base64"));
      plain = Buffer.concat([
        decipher.update(Buffer.from(envelope.data, "base64")),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      throw this.#integrityError(
        "its contents fail the AES-GCM integrity check, so it was modified after it was written (tampered or corrupted)",
      );
    }
    const payload = PayloadSchema.safeParse(safeJson(plain));
    if (!payload.success)
      throw this.#integrityError("its decrypted contents are not a map of names to values");
    return { ...payload.data.secrets };
  }

  async #write(secrets: Record<string, string>): Promise<void> {
    const key = await this.#keyOnce();
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key.bytes, iv);
    cipher.setAAD(aad(key.fingerprint));
    const data = Buffer.concat([cipher.update(JSON.stringify({ secrets }), "utf8"), cipher.final()]);
    const envelope = {
      format: FORMAT,
      version: VERSION,
      cipher: "aes-256-gcm",
      key: key.fingerprint,
      iv: iv.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
      data: data.toString("base64"),
    };
    try {
      await writeFileAtomic(this.path, `${JSON.stringify(envelope)}\n`, 0o600);
    } catch (err) {
      throw toSecretsError(err, `write the secrets store ${this.path}`);
    }
  }

  #integrityError(why: string): RuntimeError {
    return new RuntimeError(
      "FAILED_PRECONDITION",
      `Cannot read the secrets store ${this.path}: ${why}. Do not trust it: restore it from a backup, or delete it and set the secrets again.`,
      { details: { reason: "integrity", path: this.path } },
    );
  }

  /** Path and label only. */
  toJSON(): { store: string } {
    return { store: this.label };
  }

  [inspect.custom](): string {
    return `EncryptedFileStore { ${this.path} }`;
  }
}

function aad(fingerprint: string): Buffer {
  return Buffer.from(`${FORMAT}:${VERSION}:${fingerprint}`, "utf8");
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
