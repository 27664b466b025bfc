import { isRuntimeError } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { parseDotenv } from "./dotenv-parse.js";

describe("parseDotenv", () => {
  it("reads plain, exported, quoted, commented and multi-line values", () => {
    const text = [
      "# comment",
      "",
      "PLAIN=value with spaces  # trailing comment",
      "export EXPORTED=yes",
      "SINGLE='literal $HOME \\n # not a comment'",
      'DOUBLE="line1\\nline2 \\"q\\" \\$x"',
      "HASH=abc#def",
      'PEM="-----BEGIN KEY-----',
      "MIIBOgIBAAJBAK",
      '-----END KEY-----"',
      "EMPTY=",
      "  SPACED = v  ",
    ].join("\r\n");
    expect(parseDotenv(`\uFEFF${text}`, "test.env")).toEqual({
      PLAIN: "value with spaces",
      EXPORTED: "yes",
      SINGLE: "literal $HOME \\n # not a comment",
      DOUBLE: 'line1\nline2 "q" $x',
      HASH: "abc#def",
      PEM: "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----",
      EMPTY: "",
      SPACED: "v",
    });
  });

  it("reports every bad line with file and line number, never the value", () => {
    const text = ["GOOD=1", "not a pair sup3r-s3cret", 'OPEN="sup3r-s3cret', "X=1"].join("\n");
    let caught: unknown;
    try {
      parseDotenv(text, "/x/.env");
    } catch (err) {
      caught = err;
    }
    expect(isRuntimeError(caught, "INVALID_ARGUMENT")).toBe(true);
    const err = caught as Error & { issues: string[] };
    expect(err.issues).toEqual([
      "/x/.env:2: expected KEY=value (a name of letters, digits and _)",
      '/x/.env:3: OPEN has an unterminated " quote',
    ]);
    expect(err.message).not.toContain("sup3r-s3cret");
  });

  it("rejects text after a closing quote", () => {
    expect(() => parseDotenv("A='x' y", "f")).toThrow("f:1: A has text after its closing quote");
  });
});
