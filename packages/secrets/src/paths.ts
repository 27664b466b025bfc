import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** Variable naming the CLI's default store file. */
export const STORE_FILE_ENV = "AGENT_RUNTIME_SECRETS_FILE";

/** Resolves a host path, expanding a leading `~/` to the home directory. */
export function hostPath(path: string): string {
  if (path === "~") return homedir();
  return path.startsWith("~/") ? join(homedir(), path.slice(2)) : resolve(path);
}

/** The store the CLI uses without `--store`: `$AGENT_RUNTIME_SECRETS_FILE`, else `~/.config/agent-runtime/secrets.enc`. */
export function defaultStorePath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return hostPath(env[STORE_FILE_ENV] || "~/.config/agent-runtime/secrets.enc");
}
