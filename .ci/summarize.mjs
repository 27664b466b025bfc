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
      const prefix = fail[1];
      const detail = [];
      for (let j = at + 1; j < rows.length && detail.length < 8; j++) {
        if (!rows[j].startsWith(prefix)) continue;
        const text = rows[j].slice(prefix.length).trimEnd();
        if (/^\s+FAIL\s/.test(text) || /⎯{3}/.test(text)) break;
        if (text.trim()) detail.push(`      ${text.trim()}`);
      }
      failures.push(`[${names[i]}] ${prefix.replace(/:test:$/, "")}: ${fail[2]}\n${detail.join("\n")}`);
    }
    // Errors outside any test (an uncaught exception in a worker) fail the run with every test passed.
    const unhandled = /^(\S+:test:)\s+Vitest caught (\d+) unhandled error/.exec(row);
    if (unhandled) {
      const prefix = unhandled[1];
      const detail = [];
      for (let j = at + 1; j < rows.length && detail.length < 6; j++) {
        if (!rows[j].startsWith(prefix)) continue;
        const text = rows[j].slice(prefix.length).trim();
        if (/^(Error|\w+Error|Serialized Error|This error originated)/.test(text))
          detail.push(`      ${text}`);
        if (/ELIFECYCLE/.test(text)) break;
      }
      failures.push(
        `[${names[i]}] ${prefix.replace(/:test:$/, "")}: ${unhandled[2]} unhandled error(s) outside the tests\n${detail.join("\n")}`,
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
