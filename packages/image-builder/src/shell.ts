/** Characters that never need quoting in a POSIX shell word (when not first: `=` and `~` only matter there). */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes `value` as one POSIX shell word that the shell passes through literally: no expansion of `$`,
 * backquotes, globs, `;`, `&&` or anything else. Plain words are left as they are for readability.
 */
export function shellQuote(value: string): string {
  if (SAFE_WORD.test(value) && !value.startsWith("~")) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quotes every value with {@link shellQuote} and joins them with spaces. */
export function shellJoin(values: readonly string[]): string {
  return values.map(shellQuote).join(" ");
}

/**
 * Quotes a value for a Dockerfile `ENV` line so that Docker stores it literally: inside double quotes Docker
 * treats only `\`, `"` and `$` specially (buildkit's shell lexer), so those three are escaped.
 */
export function dockerEnvQuote(value: string): string {
  return `"${value.replace(/[\\"$]/g, "\\$&")}"`;
}
