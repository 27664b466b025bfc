import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `n` random characters of `[0-9A-Za-z]`. */
export function randomAlnum(n: number): string {
  let out = "";
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      // Rejection sampling keeps the distribution uniform (248 = 4 * 62).
      if (b < 248) out += ALPHABET[b % 62];
      if (out.length === n) break;
    }
  }
  return out;
}

/** Object id prefixes as Modal uses them. */
export type IdKind = "ap" | "im" | "st" | "ta" | "en";

/** A Modal-shaped object id such as `ap-<22 alnum>`. */
export function newId(kind: IdKind): string {
  return `${kind}-${randomAlnum(22)}`;
}

/**
 * A sandbox id. The SDK picks the RPC family from the id's shape: `sb-` plus exactly 22 alphanumerics is V1,
 * anything else is V2, so V2 ids carry a `-v2` suffix.
 */
export function newSandboxId(v2: boolean): string {
  return `sb-${randomAlnum(22)}${v2 ? "-v2" : ""}`;
}
