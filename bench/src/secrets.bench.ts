/**
 * secrets: redaction of 10 MB of command output against 50 secrets (each searched in its encoded forms
 * too), whole-text and streamed in 64 KB chunks, against a plain copy of the same bytes (Buffer.from) in the
 * same run.
 */
import { randomBytes } from "node:crypto";
import { createRedactor } from "@agent-runtime/secrets";
import { report, round, sample, summarize } from "./harness.ts";

const SIZE = 10 * 1024 * 1024;
const secrets = Array.from({ length: 50 }, (_, i) => {
  const shapes = [
    () => `ghp_${randomBytes(18).toString("hex")}`,
    () => `sk-${randomBytes(24).toString("base64url")}`,
    () => randomBytes(30).toString("base64"),
    () => randomBytes(16).toString("hex"),
    () => `p@ss-${randomBytes(6).toString("hex")}-wörd`,
  ];
  return shapes[i % shapes.length]!();
});
const redactor = createRedactor(secrets);

// Realistic output: build logs, listings and JSON, with a secret (raw or base64) every ~100 KB.
const lines = [
  "drwxr-xr-x  4 root root 4096 Nov 29 15:05 node_modules",
  "[build] compiled 412 modules in 3.2s (cache hit 87%)",
  '{"level":"info","msg":"request done","status":200,"durationMs":12}',
  "npm WARN deprecated inflight@1.0.6: This module is not supported",
];
let text = "";
let i = 0;
while (text.length < SIZE) {
  text += `${lines[i % lines.length]} ${i}\n`;
  if (i % 1500 === 0) {
    const s = secrets[i % secrets.length]!;
    text += i % 3000 === 0 ? `token=${s}\n` : `auth: ${Buffer.from(`user:${s}`).toString("base64")}\n`;
  }
  i++;
}
const CHUNK = 64 * 1024;

const copy = summarize(await sample(() => Buffer.from(text, "utf8"), 20));
const whole = summarize(await sample(() => redactor.redact(text), 10));
const streamed = summarize(
  await sample(() => {
    const s = redactor.createStream();
    let out = 0;
    for (let off = 0; off < text.length; off += CHUNK) out += s.write(text.slice(off, off + CHUNK)).length;
    return out + s.flush().length;
  }, 10),
);

const occurrences = (redactor.redact(text).match(/\[redacted\]/g) ?? []).length;
report("secrets", [
  {
    case: `baseline: Buffer.from copy of ${round(text.length / 1e6, 1)} MB`,
    p50Ms: round(copy.p50, 2),
    ratio: 1,
  },
  {
    case: `redact() whole text, ${secrets.length} secrets (${redactor.patternCount} patterns, ${occurrences} hits)`,
    p50Ms: round(whole.p50, 2),
    ratio: round(whole.p50 / copy.p50, 2),
    mbPerSec: round(text.length / 1e6 / (whole.p50 / 1000), 0),
  },
  {
    case: `createStream() in ${CHUNK / 1024} KB chunks`,
    p50Ms: round(streamed.p50, 2),
    ratio: round(streamed.p50 / copy.p50, 2),
    mbPerSec: round(text.length / 1e6 / (streamed.p50 / 1000), 0),
  },
]);
