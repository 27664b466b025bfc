import { createHash, createHmac, randomBytes } from "node:crypto";
import { LEASE_TAG_KEY } from "@agent-runtime/runtime-core";

/** Tags runtime-modal puts on every sandbox it creates. */
export const TAGS = {
  /** The cost lease paying for the sandbox (runtime-core's `LEASE_TAG_KEY`; set at create). */
  lease: LEASE_TAG_KEY,
  /** The session the sandbox serves (updated when a pooled sandbox is handed out). */
  session: "agent-runtime.session",
  /** The warm pool holding the sandbox; removed when it is handed out. */
  pool: "agent-runtime.pool",
  /** Per-sandbox nonce from which the session key is derived (only with `sessionKeySecret`). */
  keyNonce: "agent-runtime.key-nonce",
  /** Marks sandboxes made by runtime-modal. */
  managedBy: "agent-runtime.managed-by",
} as const;

/** Value of the `managed-by` tag. */
export const MANAGED_BY = "runtime-modal";

/**
 * Longest tag key runtime-modal sends to Modal. Neither Modal's docs, its protos nor its SDKs state a limit;
 * this is the cap modal-emulator's strict mode applies (`MAX_TAG_NAME_LENGTH`, a conservative guess), and the
 * one runtime-core puts on label keys.
 */
export const MAX_TAG_KEY_LENGTH = 64;
/** Longest tag value runtime-modal sends to Modal (see {@link MAX_TAG_KEY_LENGTH}: the strict emulator's cap). */
export const MAX_TAG_VALUE_LENGTH = 256;

/** Each tag whose key or value is over Modal's caps, with what is wrong (empty when all fit). */
export function tagIssues(tags: Readonly<Record<string, string>>): { key: string; message: string }[] {
  const issues: { key: string; message: string }[] = [];
  for (const [key, value] of Object.entries(tags)) {
    if (key.length > MAX_TAG_KEY_LENGTH)
      issues.push({
        key,
        message: `the tag key is ${key.length} characters; Modal tag keys hold at most ${MAX_TAG_KEY_LENGTH}`,
      });
    if (value.length > MAX_TAG_VALUE_LENGTH)
      issues.push({
        key,
        message: `the tag value is ${value.length} characters; Modal tag values hold at most ${MAX_TAG_VALUE_LENGTH}`,
      });
  }
  return issues;
}

const NAME_CHARS = /[^A-Za-z0-9._-]/g;

/**
 * The sandbox name for a session id: unique among running sandboxes of the App, so a second sandbox for the
 * same session fails with ALREADY_EXISTS and a sandbox can be found again by session id. Long or unusual ids
 * are shortened with a hash; the result always matches Modal's `[A-Za-z0-9._-]{1,63}`.
 */
export function sandboxNameFor(sessionId: string): string {
  const clean = sessionId.replace(NAME_CHARS, "-");
  const name = `ar-${clean}`;
  if (name.length <= 63 && clean === sessionId) return name;
  const hash = createHash("sha256").update(sessionId).digest("hex").slice(0, 12);
  return `ar-${clean.slice(0, 46)}-${hash}`;
}

/** A fresh random session API key. */
export function randomSessionKey(): string {
  return randomBytes(24).toString("base64url");
}

/** A fresh nonce for {@link derivedSessionKey}. */
export function newKeyNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** The session API key derived from the host's secret and a sandbox's nonce (HMAC-SHA256). */
export function derivedSessionKey(secret: string, nonce: string): string {
  return createHmac("sha256", secret).update(`agent-runtime/modal/session-key/${nonce}`).digest("base64url");
}
