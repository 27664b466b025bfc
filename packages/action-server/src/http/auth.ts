import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Compares a presented session key with the expected one in constant time (both are hashed first, so
 * neither their content nor their length leaks through timing).
 */
export function sessionKeyMatches(presented: string | string[] | undefined, expected: string): boolean {
  if (typeof presented !== "string") return false;
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}
