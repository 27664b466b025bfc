/**
 * Encoded forms that wrap lines, produced by the real tool (coreutils `base64`): a secret longer than 57
 * bytes piped through `base64` comes back split over 76-column lines.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createRedactor } from "../src/index.js";

const LENGTHS = [10, 57, 58, 100, 300];
const WIDTHS = ["0", "76", "64"];
/** Bytes before the secret: each of the three base64 alignments, and a Basic-auth style prefix. */
const PREFIXES = ["", "a", "ab", "user:"];

function run(tool: string, args: string[], input: string | Buffer): string {
  return execFileSync(tool, args, { input, encoding: "utf8" });
}

/** An ASCII secret of exactly `bytes` bytes. */
function secretOf(bytes: number): string {
  return randomBytes(bytes).toString("base64url").slice(0, bytes);
}

/**
 * The base64 characters that depend only on the secret, at each of the three alignments, computed here
 * independently of the redactor.
 */
function base64Cores(secret: string): string[] {
  return [0, 1, 2].map((offset) => {
    const text = Buffer.concat([Buffer.alloc(offset), Buffer.from(secret)]).toString("base64");
    return text.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + secret.length)) / 6));
  });
}

/** A window of 8 characters of any encoding of `secret` left in `out` once line breaks are removed. */
function leak(out: string, secret: string): string | undefined {
  const flat = out.replace(/\r?\n/g, "").replaceAll("[redacted]", "\u0000");
  for (const form of [secret, ...base64Cores(secret)]) {
    for (let i = 0; i + 8 <= form.length; i++) {
      if (flat.includes(form.slice(i, i + 8))) return form.slice(i, i + 8);
    }
  }
  return undefined;
}

describe("base64 output of coreutils, wrapped or not", () => {
  const secrets = LENGTHS.map(secretOf);
  const redactor = createRedactor(secrets);

  for (const [i, length] of LENGTHS.entries()) {
    for (const width of WIDTHS) {
      it(`a ${length}-byte secret through \`base64 -w ${width}\`, at every alignment, LF and CRLF`, () => {
        const secret = secrets[i]!;
        for (const prefix of PREFIXES) {
          const encoded = run("base64", ["-w", width], prefix + secret);
          if (width !== "0" && (prefix + secret).length > (Number(width) / 4) * 3) {
            expect(encoded.trimEnd(), "the tool really wrapped").toContain("\n");
          }
          for (const text of [encoded, encoded.replace(/\n/g, "\r\n"), `log: ${encoded}done\n`]) {
            const out = redactor.redact(text);
            expect(
              leak(out, secret),
              `prefix ${JSON.stringify(prefix)}: ${JSON.stringify(out)}`,
            ).toBeUndefined();
            expect(out).toContain("[redacted]");
          }
        }
      });
    }
  }

  it("the whole padded output of `base64` of exactly the secret becomes one placeholder", () => {
    for (const [i, length] of LENGTHS.entries()) {
      const out = redactor.redact(run("base64", ["-w", "76"], secrets[i]!));
      expect(out, `${length} bytes`).toBe("[redacted]\n");
    }
  });

  it("lines of 1 to 3 columns (every window of the line filter reaches another line break)", () => {
    const secret = secrets[2]!;
    for (const width of ["1", "2", "3"]) {
      const out = redactor.redact(run("base64", ["-w", width], `ab${secret}`));
      expect(leak(out, secret), `-w ${width}`).toBeUndefined();
    }
  });

  it("split across stream chunks at every offset, and one character at a time", () => {
    const secret = secrets[3]!; // 100 bytes: 3 lines at 76 columns
    const text = `before\n${run("base64", ["-w", "76"], `ab${secret}`).replace(/\n/g, "\r\n")}after\n`;
    const expected = redactor.redact(text);
    expect(leak(expected, secret)).toBeUndefined();
    for (let at = 0; at <= text.length; at++) {
      const stream = redactor.createStream();
      const out = stream.write(text.slice(0, at)) + stream.write(text.slice(at)) + stream.flush();
      expect(out, `split at ${at}`).toBe(expected);
    }
    for (const [a, b] of [
      [10, 90],
      [40, 120],
      [80, 81],
    ] as const) {
      const stream = redactor.createStream();
      const out =
        stream.write(text.slice(0, a)) +
        stream.write(text.slice(a, b)) +
        stream.write(text.slice(b)) +
        stream.flush();
      expect(out, `split at ${a} and ${b}`).toBe(expected);
    }
    const stream = redactor.createStream();
    let out = "";
    for (const ch of text) out += stream.write(ch);
    expect(out + stream.flush()).toBe(expected);
  });

  it("a stream holds back at most maxPatternLength - 1 characters besides line breaks, at most 3x that in all", () => {
    const stream = redactor.createStream();
    const lines = `${"QUJD".repeat(19)}\n`.repeat(40);
    let out = "";
    let written = 0;
    for (const line of lines.split(/(?<=\n)/)) {
      out += stream.write(line);
      written += line.length;
      expect(written - out.length).toBeLessThanOrEqual(3 * redactor.maxPatternLength);
    }
    expect(out + stream.flush()).toBe(lines);
  });

  it("a stream emits at once what cannot begin a secret, and holds back only a tail that could", () => {
    // Its own fixed secret: with the random ones above, an encoded form may begin with any letter or digit.
    const secret = "Kq7vNw2sLp9xTz4rYb6m";
    const fixed = createRedactor([secret]);
    const stream = fixed.createStream();
    // A line ending in a character no form of the secret contains is shown at once (a live view does not lag).
    expect(stream.write("compiling step 1 of 3: done.\n")).toBe("compiling step 1 of 3: done.\n");
    // The first 10 characters of the secret: held back until the rest shows whether it is the secret.
    expect(stream.write(`token: ${secret.slice(0, 10)}`)).toBe("token: ");
    expect(stream.write(`${secret.slice(10)} done\n`) + stream.flush()).toBe(
      `${fixed.redact(secret)} done\n`,
    );
    expect(fixed.redact(secret)).not.toContain(secret);
  });
});

describe("no false positives", () => {
  // Many secrets of every shape, so that many patterns (and their 4-grams) are in play.
  const secrets = [
    ...LENGTHS.map(secretOf),
    ...Array.from({ length: 40 }, (_, i) =>
      i % 2 ? `ghp_${randomBytes(18).toString("hex")}` : randomBytes(30).toString("base64"),
    ),
  ];
  const redactor = createRedactor(secrets);

  it("leaves ordinary output alone: listings, source code, wrapped base64 and hex of other data", () => {
    const srcDir = join(import.meta.dirname, "..", "src", "redaction");
    const binary = readFileSync(process.execPath).subarray(0, 64 * 1024);
    const corpus = [
      run("ls", ["-la", "/usr/bin"], ""),
      ...readdirSync(srcDir).map((f) => readFileSync(join(srcDir, f), "utf8")),
      run("base64", ["-w", "76"], binary),
      run("base64", ["-w", "64"], binary).replace(/\n/g, "\r\n"),
      run("basenc", ["--base16", "-w", "60"], binary.subarray(0, 8192)),
      run("basenc", ["--base32", "-w", "76"], binary.subarray(0, 8192)),
      `-----BEGIN CERTIFICATE-----\n${run("base64", ["-w", "64"], randomBytes(900))}-----END CERTIFICATE-----\n`,
    ].join("\n");
    expect(redactor.redact(corpus) === corpus).toBe(true);
    const stream = redactor.createStream();
    let out = "";
    for (let i = 0; i < corpus.length; i += 4096) out += stream.write(corpus.slice(i, i + 4096));
    expect(out + stream.flush() === corpus).toBe(true);
  });
});
