import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { PRIVATE_FILE_MODE, tightenFile } from "./state-dir.js";

/** Name of the token file inside the state directory. */
export const TOKEN_FILE_NAME = "token";
/** Shortest token accepted, from a file or the environment. */
export const MIN_TOKEN_LENGTH = 16;

/** A new API token: 32 random bytes from the OS CSPRNG, base64url (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString("base64url");
}

/** The token read from (or written to) a token file. */
export interface TokenFile {
  token: string;
  path: string;
  /** True when this call created the file (the first start): tell the user how to use it, once. */
  created: boolean;
}

/**
 * Reads the API token from `path`, creating the file first (mode 0600, exclusive create, so two hosts
 * starting at once agree on one token) when it does not exist. A file of ours looser than 0600 is tightened;
 * someone else's readable by others, or a token shorter than {@link MIN_TOKEN_LENGTH}, is refused.
 */
export function loadOrCreateToken(path: string): TokenFile {
  let created = false;
  try {
    const fd = openSync(path, "wx", PRIVATE_FILE_MODE);
    try {
      writeSync(fd, `${generateToken()}\n`);
    } finally {
      closeSync(fd);
    }
    created = true;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new RuntimeError(
        "UNAVAILABLE",
        `Cannot create the API token file ${path} (${(cause as NodeJS.ErrnoException).code ?? "error"}); check the state directory (--state-dir) and its permissions.`,
        { cause },
      );
    }
  }
  tightenFile(path);
  const stat = statSync(path);
  if ((stat.mode & 0o077) !== 0) {
    throw new RuntimeError(
      "FAILED_PRECONDITION",
      `The API token file ${path} is readable by other users (mode ${(stat.mode & 0o777).toString(8).padStart(4, "0")}) and not ours to fix; run \`chmod 600 ${path}\` as its owner, or delete it to get a new token.`,
    );
  }
  const token = readFileSync(path, "utf8").trim();
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new RuntimeError(
      "FAILED_PRECONDITION",
      `The API token file ${path} does not hold a usable token (at least ${MIN_TOKEN_LENGTH} characters, no spaces); delete it and restart to get a new one.`,
    );
  }
  return { token, path, created };
}
