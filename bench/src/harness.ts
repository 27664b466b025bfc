import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Percentile (0..100) of a list of numbers (nearest-rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Times `fn` `iterations` times (after `warmup` runs) and returns each duration in ms. */
export async function sample(
  fn: () => unknown | Promise<unknown>,
  iterations: number,
  warmup = 3,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** A summary of samples in ms. */
export function summarize(values: readonly number[]): { p50: number; p99: number; mean: number; n: number } {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return { p50: percentile(values, 50), p99: percentile(values, 99), mean, n: values.length };
}

/** Prints a result table and writes it to `.bench-results/<name>.json` at the bench package root. */
export function report(name: string, rows: Record<string, unknown>[]): void {
  console.table(rows);
  const outDir = join(import.meta.dirname, "..", ".bench-results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, `${name}.json`),
    JSON.stringify({ name, at: new Date().toISOString(), rows }, null, 2),
  );
}

/** Rounds to `digits` significant decimals for display. */
export function round(n: number, digits = 3): number {
  return Number(n.toFixed(digits));
}

/** What the agent-host API answers in the benches (a session or a task). */
export interface ApiAnswer {
  id: string;
  status: string;
  observation?: { content?: string };
}

/**
 * A small client of an agent-host API at `url` that sends `token`: a status of 300 or more throws, naming
 * `label` (when given), the method, the path and the answer.
 */
export function hostApi(
  url: string,
  token: string,
  label?: string,
): (method: string, path: string, body?: unknown) => Promise<ApiAnswer> {
  return async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status >= 300)
      throw new Error(`${label ? `${label}: ` : ""}${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as ApiAnswer;
  };
}
