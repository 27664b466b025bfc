import { posix } from "node:path";

/** A file a runtime writes into the sandbox before the first action. */
export interface SandboxFile {
  /** File content; treat as sensitive (never log it). */
  readonly content: string;
  /** Permission bits, e.g. `0o600`. */
  readonly mode: number;
}

/** Default URLs and usernames per provider token variable. */
export const GIT_PROVIDER_TOKENS: Readonly<Record<string, { urls: readonly string[]; username: string }>> = {
  GITHUB_TOKEN: { urls: ["https://github.com"], username: "x-access-token" },
  GITLAB_TOKEN: { urls: ["https://gitlab.com"], username: "oauth2" },
  BITBUCKET_TOKEN: { urls: ["https://bitbucket.org"], username: "x-token-auth" },
};

/** Where the helper script goes (`~/` is the sandbox user's home). */
export const GIT_HELPER_PATH = "~/.config/agent-runtime/git-credential-helper";
/** Where the credential sections go. */
export const GIT_CREDENTIALS_CONFIG_PATH = "~/.config/agent-runtime/git-credentials.gitconfig";
/** The global git config, which includes {@link GIT_CREDENTIALS_CONFIG_PATH}. */
export const GIT_GLOBAL_CONFIG_PATH = "~/.gitconfig";

/**
 * The helper reads the token from the environment variable named by its first argument. The token is
 * never written to disk and never appears in an argument list: `printf` is a shell builtin, and git
 * reads the answer from the helper's stdout.
 */
const HELPER_SCRIPT = `#!/bin/sh
# git credential helper written by @agent-runtime/secrets.
# Called by git as: sh <this file> <TOKEN_VARIABLE> <username> get|store|erase
# Answers "get" with the token from $TOKEN_VARIABLE; the token never touches disk or a command line.
var=$1
user=$2
op=$3
while IFS= read -r line && [ -n "$line" ]; do :; done
[ "$op" = get ] || exit 0
case "$var" in ''|[0-9]*|*[!A-Za-z0-9_]*) exit 0 ;; esac
eval "token=\\\${$var-}"
[ -n "$token" ] || exit 0
printf 'username=%s\\npassword=%s\\n' "$user" "$token"
`;

/** Options of {@link gitCredentialFiles}. */
export interface GitCredentialFilesOptions {
  /** Token variable -> URLs it authenticates; replaces the default URLs of that variable. */
  hosts?: Readonly<Record<string, readonly string[]>>;
  /** `user.name` for `~/.gitconfig`. */
  userName?: string | undefined;
  /** `user.email` for `~/.gitconfig`. */
  userEmail?: string | undefined;
}

/**
 * Files that make git in the sandbox authenticate with the provider tokens found in `names` (the
 * variables that will be in the sandbox environment), or `undefined` when there is none.
 *
 * What a runtime must do with them (the same for every entry of `ResolvedSecrets.files`; runtime-core's
 * `BaseRuntime` does it while provisioning, before READY, with `provisionSecretFiles`):
 * 1. Expand a leading `~/` to the sandbox user's home directory (see {@link sandboxFilePaths}).
 * 2. Create each file empty with `mode` (parents created), then write the content through the file API, so
 *    it is never readable with a wider mode. Never through a shell command line: `echo ... > file` would put
 *    the content in an action and its observation.
 * 3. Start the sandbox's shell with `ResolvedSecrets.env` in its environment, so the helper finds the token.
 *
 * The files hold no token: the helper script reads it from the environment when git asks.
 * `~/.gitconfig` is replaced; a runtime that must keep an image's own `~/.gitconfig` should skip that
 * entry and append its `[include]` section instead.
 */
export function gitCredentialFiles(
  names: readonly string[],
  options: GitCredentialFilesOptions = {},
): Record<string, SandboxFile> | undefined {
  const tokens = new Map<string, { urls: readonly string[]; username: string }>();
  for (const [name, spec] of Object.entries(GIT_PROVIDER_TOKENS)) tokens.set(name, spec);
  for (const [name, urls] of Object.entries(options.hosts ?? {})) {
    tokens.set(name, { urls, username: GIT_PROVIDER_TOKENS[name]?.username ?? "x-access-token" });
  }
  const present = new Set(names);
  const sections: string[] = [];
  for (const [name, { urls, username }] of tokens) {
    if (!present.has(name)) continue;
    for (const url of urls) {
      const origin = credentialUrl(url);
      const command = `!sh "$HOME/${GIT_HELPER_PATH.slice(2)}" ${name} ${username}`;
      sections.push(`[credential "${origin}"]\n\thelper =\n\thelper = ${quoteConfig(command)}\n`);
    }
  }
  if (sections.length === 0) return undefined;
  const header =
    "# Written by @agent-runtime/secrets: provider tokens come from the environment via a helper.\n";
  const user =
    options.userName || options.userEmail
      ? `[user]\n${options.userName ? `\tname = ${quoteConfig(options.userName)}\n` : ""}${
          options.userEmail ? `\temail = ${quoteConfig(options.userEmail)}\n` : ""
        }`
      : "";
  return {
    [GIT_HELPER_PATH]: { content: HELPER_SCRIPT, mode: 0o700 },
    [GIT_CREDENTIALS_CONFIG_PATH]: { content: header + sections.join(""), mode: 0o644 },
    [GIT_GLOBAL_CONFIG_PATH]: {
      content: `${header}[include]\n\tpath = ${GIT_CREDENTIALS_CONFIG_PATH}\n${user}`,
      mode: 0o644,
    },
  };
}

/**
 * Resolves the `~/` paths of `ResolvedSecrets.files` against the sandbox user's `home` and returns
 * absolute paths, parents first (write them in this order).
 */
export function sandboxFilePaths(
  files: Readonly<Record<string, SandboxFile>>,
  home: string,
): { path: string; content: string; mode: number }[] {
  return Object.entries(files)
    .map(([path, file]) => ({
      path: path.startsWith("~/") ? posix.join(home, path.slice(2)) : path,
      content: file.content,
      mode: file.mode,
    }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

function credentialUrl(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname === "/" ? "" : parsed.pathname;
  return `${parsed.protocol}//${parsed.host}${path}`;
}

function quoteConfig(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}
