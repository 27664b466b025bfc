import { createHmac, timingSafeEqual } from "node:crypto";

/** Claims the emulator puts in its tokens. */
export interface JwtClaims {
  /** Expiry, unix seconds (the SDK reads only this). */
  exp: number;
  /** Issued at, unix seconds. */
  iat: number;
  /** Subject: the task id for router tokens, the token id for auth tokens. */
  sub: string;
  /** Sandbox id (router tokens). */
  sandbox_id?: string;
}

// Plain base64 without padding: the SDK decodes the auth token's payload with `atob`, which rejects `-` and `_`.
function b64(data: string | Buffer): string {
  return Buffer.from(data).toString("base64").replace(/=+$/, "");
}

/** Signs `claims` as an HS256 JWT with `key`. */
export function signJwt(claims: JwtClaims, key: Buffer): string {
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify(claims));
  const sig = createHmac("sha256", key).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64(sig)}`;
}

/** Why a token was rejected. */
export type JwtRejection = "malformed" | "bad-signature" | "expired";

/** Verifies an emulator JWT; returns its claims, or why it was rejected. */
export function verifyJwt(token: string, key: Buffer, nowMs = Date.now()): JwtClaims | JwtRejection {
  const parts = token.split(".");
  if (parts.length !== 3) return "malformed";
  const [head, body, sig] = parts as [string, string, string];
  const expected = createHmac("sha256", key).update(`${head}.${body}`).digest();
  const given = Buffer.from(sig, "base64");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "bad-signature";
  let claims: JwtClaims;
  try {
    claims = JSON.parse(Buffer.from(body, "base64").toString("utf8")) as JwtClaims;
  } catch {
    return "malformed";
  }
  if (typeof claims.exp !== "number" || typeof claims.sub !== "string") return "malformed";
  if (claims.exp * 1000 <= nowMs) return "expired";
  return claims;
}
