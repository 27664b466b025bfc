import { createHash, randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { Logger } from "@agent-runtime/runtime-core";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { toSecretsError } from "../errors.js";

/** Environment variable read for the key when no key file is given. */
export const DEFAULT_KEY_ENV = "AGENT_RUNTIME_SECRETS_KEY";
/** Environment variable naming a key file, read when neither a key file nor the key variable is set. */
export const DEFAULT_KEY_FILE_ENV = "AGENT_RUNTIME_SECRETS_KEY_FILE";

const KEY_BYTES = 32;
const HOW_TO =
  `Generate one with \`agent-runtime-secrets keygen\` (or \`openssl rand -base64 32\`) and put it in ` +
  `${DEFAULT_KEY_ENV}, or in a file named by --key-file / ${DEFAULT_KEY_FILE_ENV}.`;

/** A 32-byte AES key and a short public fingerprint of it (to tell "wrong key" from "tampered file"). */
export interface StoreKey {
  /** The key bytes. Never log them. */
  readonly bytes: Buffer;
  /** First 8 bytes of SHA-256(key) as hex: safe to store and print. */
  readonly fingerprint: string;
}

/** Where to look for the key, in order: `keyFile`, the `keyEnv` variable, the file named by `keyFileEnv`. */
export interface KeyLookup {
  /** A key file path. */
  keyFile?: string | undefined;
  /** @default "AGENT_RUNTIME_SECRETS_KEY" */
  keyEnv?: string | undefined;
  /** The environment to read. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Receives a warning when the key file is readable by group or others. */
  logger?: Logger | undefined;
}

/** Decodes a key written as base64 (44 chars), hex (64 chars) or 32 raw bytes; `from` names the source. */
export function decodeKey(raw: Buffer | string, from: string): StoreKey {
  const buf = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw;
  let bytes: Buffer | undefined;
  if (buf.length === KEY_BYTES && !/^[\s\x21-\x7e]*$/.test(buf.toString("latin1"))) {
    bytes = Buffer.from(buf);
  } else {
    const text = buf.toString("utf8").trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) bytes = Buffer.from(text, "hex");
    else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) bytes = Buffer.from(text, "base64");
    if (bytes !== undefined && bytes.length !== KEY_BYTES) bytes = undefined;
  }
  if (bytes === undefined) {
    throw new RuntimeError(
      "INVALID_ARGUMENT",
      `The key in ${from} is not 32 bytes written as base64 (44 characters) or hex (64 characters). ${HOW_TO}`,
    );
  }
  return { bytes, fingerprint: createHash("sha256").update(bytes).digest("hex").slice(0, 16) };
}

/** Finds and decodes the store key; throws UNAUTHORIZED naming where it looked when there is none. */
export async function loadKey(lookup: KeyLookup = {}): Promise<StoreKey> {
  const env = lookup.env ?? process.env;
  const keyEnv = lookup.keyEnv ?? DEFAULT_KEY_ENV;
  const file = lookup.keyFile ?? (env[keyEnv] ? undefined : env[DEFAULT_KEY_FILE_ENV]);
  if (file) {
    try {
      const info = await stat(file);
      if ((info.mode & 0o077) !== 0) {
        lookup.logger?.warn("The secrets key file is readable by other users; run chmod 600 on it.", {
          keyFile: file,
        });
      }
      return decodeKey(await readFile(file), `key file ${file}`);
    } catch (err) {
      throw toSecretsError(err, `read the key file ${file}`);
    }
  }
  const value = env[keyEnv];
  if (value) return decodeKey(value, `$${keyEnv}`);
  throw new RuntimeError(
    "UNAUTHORIZED",
    `No key for the encrypted secrets store: $${keyEnv} is not set. ${HOW_TO}`,
  );
}

/** A new random key, base64-encoded (44 characters). */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString("base64");
}
