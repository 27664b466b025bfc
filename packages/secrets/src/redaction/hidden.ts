import { inspect } from "node:util";
import { InvalidArgumentError } from "@agent-runtime/runtime-core";

/** The text shown instead of a value by `JSON.stringify` and `util.inspect`. */
export const REDACTED = "[redacted]";

/**
 * Returns a frozen copy of `record` whose keys and values enumerate normally (so `{ ...env }`,
 * `Object.entries(env)` and `spawn(..., { env })` see the values) but whose `JSON.stringify` and
 * `util.inspect` forms show every value as `[redacted]`.
 */
export function hiddenRecord<T>(record: Readonly<Record<string, T>>): Readonly<Record<string, T>> {
  if (Object.hasOwn(record, "toJSON")) {
    // It would replace the masking `toJSON` below and let JSON.stringify print values.
    throw new InvalidArgumentError('A secret may not be named "toJSON"; rename it.', [
      "toJSON: reserved name",
    ]);
  }
  const copy: Record<string, T> = { ...record };
  const masked = (): Record<string, string> =>
    Object.fromEntries(Object.keys(copy).map((k) => [k, REDACTED]));
  Object.defineProperty(copy, "toJSON", { value: masked, enumerable: false });
  Object.defineProperty(copy, inspect.custom, {
    value: (_depth: number, options: object) => inspect(masked(), options),
    enumerable: false,
  });
  return Object.freeze(copy);
}
