// Sums the vitest counts of each CI pass and, at the very end of the log (the part CI keeps), names every failed
// test with the first lines of its error, and every turbo task that failed without a vitest summary.
// Usage: node .ci/summarize.mjs "label1,label2" log1 log2
import { readFileSync } from "node:fs";

const [labels, ...logs] = process.argv.slice(2);
const names = labels.split(",");
const total = { passed: 0, failed: 0, skipped: 0 };
const line = (s) => `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`;
const failures = [];
const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");
/**
 * Up to `max` non-empty lines of one task's output (rows starting with `prefix`) after row `at`, indented; stops
 * at a line for which `stop` holds, keeps those for which `keep` holds.
 */
function linesAfter(rows, at, prefix, max, stop, keep) {
  const kept = [];
  for (let j = at + 1; j < rows.length && kept.length < max; j++) {
    if (!rows[j].startsWith(prefix)) continue;
    const text = rows[j].slice(prefix.length).trim();
    if (stop(text)) break;
    if (text && keep(text)) kept.push(`      ${text}`);
  }
  return kept.join("\n");
}

logs.forEach((log, i) => {
  const rows = readFileSync(log, "utf8").replace(ansi, "").split("\n");
  const sum = { passed: 0, failed: 0, skipped: 0 };
  rows.forEach((row, at) => {
    const m = /:test:\s+Tests\s+(.*)\(\d+\)\s*$/.exec(row);
    if (m) {
      for (const part of m[1].split("|")) {
        const p = /(\d+)\s+(passed|failed|skipped|todo)/.exec(part);
        if (p && p[2] in sum) sum[p[2]] += Number(p[1]);
      }
      return;
    }
    // vitest's "Failed Tests" section: " FAIL  test/x.test.ts > suite > name", then the error.
    const fail = /^(\S+:test:)\s+FAIL\s+(.*)$/.exec(row);
    if (fail) {
      const detail = linesAfter(
        rows,
        at,
        fail[1],
        8,
        (text) => /^FAIL\s|⎯{3}/.test(text),
        () => true,
      );
      failures.push(`[${names[i]}] ${fail[1].replace(/:test:$/, "")}: ${fail[2]}\n${detail}`);
    }
    // Errors outside any test (an uncaught exception in a worker) fail the run with every test passed.
    const unhandled = /^(\S+:test:)\s+Vitest caught (\d+) unhandled error/.exec(row);
    if (unhandled) {
      const detail = linesAfter(
        rows,
        at,
        unhandled[1],
        6,
        (text) => /ELIFECYCLE/.test(text),
        (text) => /^(Error|\w+Error|Serialized Error|This error originated)/.test(text),
      );
      failures.push(
        `[${names[i]}] ${unhandled[1].replace(/:test:$/, "")}: ${unhandled[2]} unhandled error(s) outside the tests\n${detail}`,
      );
    }
    const task = /^\s*Failed:\s+(\S+)/.exec(row);
    if (task) failures.push(`[${names[i]}] turbo task failed: ${task[1]}`);
  });
  for (const k of Object.keys(total)) total[k] += sum[k];
  console.log(`vitest ${names[i]}: ${line(sum)}`);
});
if (failures.length > 0) {
  console.log(`\nWhat failed (${failures.length}):`);
  for (const f of failures) console.log(`  ${f}`);
  console.log("");
}
console.log(`vitest: ${line(total)}`);
