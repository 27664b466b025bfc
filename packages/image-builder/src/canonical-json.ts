/**
 * JSON with object keys in sorted (UTF-16 code unit) order at every depth, no whitespace, and `undefined`
 * members left out: the same value always gives the same text, whatever order its keys were written in.
 * Arrays keep their order (step order is meaningful).
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`cannot serialise a ${typeof value} as JSON`);
    return text;
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => (item === undefined ? "null" : stableStringify(item))).join(",")}]`;
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const member = record[key];
    if (member === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${stableStringify(member)}`);
  }
  return `{${parts.join(",")}}`;
}
