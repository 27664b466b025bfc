import type { z } from "zod";
import { InvalidArgumentError } from "./errors.js";

/** Formats a zod issue path like `steps[3].packages[0]` (empty path: `(root)`). */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || "(root)";
}

/** Every issue of a zod error as `path: message`. */
export function formatZodIssues(error: z.ZodError, prefix = ""): string[] {
  return error.issues.map((issue) => {
    const path = formatIssuePath([...(prefix ? [prefix] : []), ...issue.path]);
    return `${path}: ${issue.message}`;
  });
}

/**
 * Parses `input` with `schema` once, or throws an {@link InvalidArgumentError} that lists every issue
 * as `path: message` under a heading naming `what` was invalid.
 */
export function parseOrThrow<TSchema extends z.ZodType>(
  schema: TSchema,
  input: unknown,
  what: string,
  prefix = "",
): z.output<TSchema> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = formatZodIssues(result.error, prefix);
  throw new InvalidArgumentError(`Invalid ${what}:\n  ${issues.join("\n  ")}`, issues);
}

/**
 * Issues (`key: this option is now "new"`) for each key of `input` found in `renamed` (old key -> the option to use
 * now, a dotted path for one that moved). The one way every package reports renamed options.
 */
export function renamedOptionIssues(input: unknown, renamed: Readonly<Record<string, string>>): string[] {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return [];
  return Object.keys(input)
    .filter((key) => Object.hasOwn(renamed, key))
    .map((key) => `${key}: this option is now "${renamed[key]}"`);
}

/** Throws INVALID_ARGUMENT listing {@link renamedOptionIssues} under a heading naming `what`. */
export function checkRenamedOptions(
  input: unknown,
  renamed: Readonly<Record<string, string>>,
  what: string,
): void {
  const issues = renamedOptionIssues(input, renamed);
  if (issues.length > 0) throw new InvalidArgumentError(`Invalid ${what}:\n  ${issues.join("\n  ")}`, issues);
}
