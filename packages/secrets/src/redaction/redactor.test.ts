import { inspect } from "node:util";
import type { Logger } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { encodedForms } from "./forms.js";
import { createRedactor, MutableRedactor } from "./redactor.js";

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const push = (m: string, f?: object) => lines.push(`${m} ${JSON.stringify(f ?? {})}`);
  return { logger: { debug: push, info: push, warn: push, error: push }, lines };
}

describe("createRedactor", () => {
  it("replaces raw values and their encoded forms", () => {
    const secret = 'p@ss w/rd+"quoted"';
    const r = createRedactor({ PASSWORD: secret });
    const b64 = Buffer.from(secret).toString("base64");
    const text = [
      `raw ${secret}`,
      `json ${JSON.stringify({ v: secret })}`,
      `url ${encodeURIComponent(secret)}`,
      `form ${encodeURIComponent(secret).replace(/%20/g, "+")}`,
      `b64 ${b64}`,
      `b64url ${b64.replace(/\+/g, "-").replace(/\//g, "_")}`,
      `basic ${Buffer.from(`user:${secret}`).toString("base64")}`,
    ].join("\n");
    const out = r.redact(text);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(b64.slice(0, 12));
    expect(out).not.toContain(encodeURIComponent(secret));
    expect(out).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(out.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(7);
  });

  it("catches base64 of a value at every byte alignment inside a larger blob", () => {
    const secret = "tok_0123456789abcdef";
    const r = createRedactor([secret]);
    for (const prefix of ["", "a", "ab", "abc", "Authorization: x:"]) {
      const blob = Buffer.from(`${prefix}${secret}-suffix`).toString("base64");
      expect(r.redact(blob), `prefix ${JSON.stringify(prefix)}`).toContain("[redacted]");
    }
  });

  it("redacts non-ASCII values, their \\u escapes and CRLF forms of multi-line values", () => {
    const secret = "clé-secrète-🔑-ünïcode";
    const pem =
      "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
    const r = createRedactor({ A: secret, PEM: pem });
    const ascii = JSON.stringify(secret).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
    expect(r.redact(ascii)).toBe(JSON.stringify("[redacted]"));
    expect(r.redact(pem.replace(/\n/g, "\r\n"))).toBe("[redacted]");
    // One line of the key printed alone (head -2, say) is still secret material.
    expect(r.redact("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")).toBe("line: [redacted]");
    // The PEM armour is not.
    expect(r.redact("-----BEGIN PRIVATE KEY-----")).toBe("-----BEGIN PRIVATE KEY-----");
  });

  it("escapes regex metacharacters", () => {
    const secret = "a.b*c+d?(e)[f]{g}|h^$\\i/j-";
    const r = createRedactor([secret]);
    expect(r.redact(`x${secret}y aXbbbc`)).toBe("x[redacted]y aXbbbc");
  });

  it("replaces the longest value first when one secret contains another", () => {
    const r = createRedactor(["abcdefgh", "abcdefghijkl"]);
    expect(r.redact("abcdefghijkl abcdefgh")).toBe("[redacted] [redacted]");
  });

  it("ignores too-short values with a warning that names the variable, never the value", () => {
    const { logger, lines } = capture();
    const r = createRedactor({ SHORT: "abc", OK: "long-enough-value" }, { logger });
    expect(r.redact("abc long-enough-value")).toBe("abc [redacted]");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("SHORT");
    expect(lines[0]).not.toContain('abc"');
    expect(lines[0]).not.toMatch(/\babc\b/);
  });

  it("uses a custom placeholder and is the identity when empty", () => {
    expect(createRedactor(["secret-value"], { placeholder: "***" }).redact("a secret-value")).toBe("a ***");
    const empty = createRedactor([]);
    expect(empty.isEmpty).toBe(true);
    const obj = { a: 1 };
    expect(empty.redactDeep(obj)).toBe(obj);
  });

  it("encodedForms drops forms shorter than the minimum", () => {
    for (const form of encodedForms("abcdefgh", 6)) expect(form.length).toBeGreaterThanOrEqual(6);
  });
});

describe("redactDeep", () => {
  const secret = "deep-secret-value";
  const r = createRedactor([secret]);

  it("copies objects, arrays, maps and sets, keeping keys", () => {
    const input = {
      [secret]: "key kept",
      list: [secret, { nested: `x ${secret}` }],
      map: new Map([["k", secret]]),
      set: new Set([secret]),
      n: 5,
      when: new Date(0),
    };
    const out = r.redactDeep(input);
    expect(out).not.toBe(input);
    expect(Object.keys(out)).toContain(secret);
    expect(out.list).toEqual(["[redacted]", { nested: "x [redacted]" }]);
    expect(out.map.get("k")).toBe("[redacted]");
    expect([...out.set]).toEqual(["[redacted]"]);
    expect(out.n).toBe(5);
    expect(out.when).toBeInstanceOf(Date);
    expect(input.list[0]).toBe(secret);
  });

  it("handles cycles", () => {
    const a: Record<string, unknown> = { v: secret };
    a.self = a;
    const out = r.redactDeep(a);
    expect(out.v).toBe("[redacted]");
    expect(out.self).toBe(out);
  });

  it("redacts errors: message, stack, cause and own fields, keeping the prototype", () => {
    class CustomError extends Error {
      extra = `field ${secret}`;
    }
    const err = new CustomError(`failed with ${secret}`, { cause: new Error(`inner ${secret}`) });
    const out = r.redactError(err);
    expect(out).toBeInstanceOf(CustomError);
    expect(out.message).toBe("failed with [redacted]");
    expect(out.stack).not.toContain(secret);
    expect((out.cause as Error).message).toBe("inner [redacted]");
    expect(out.extra).toBe("field [redacted]");
    expect(inspect(out, { depth: 5 })).not.toContain(secret);
    expect(err.message).toContain(secret);
  });

  it("uses toJSON of class instances", () => {
    class Holder {
      toJSON() {
        return { v: secret };
      }
    }
    expect(r.redactDeep({ h: new Holder() })).toEqual({ h: { v: "[redacted]" } });
  });
});

describe("createStream", () => {
  const secrets = ["stream-secret-1", "another-longer-stream-secret", "ü-secret-ünïcode-🔑"];
  const r = createRedactor(secrets);
  const text = `start ${secrets[0]} mid ${secrets[1]}${secrets[2]} ${Buffer.from(secrets[1]!).toString("base64")} end`;
  const expected = r.redact(text);

  it("gives the same result as redact() for every split point", () => {
    for (let i = 0; i <= text.length; i++) {
      const s = r.createStream();
      const out = s.write(text.slice(0, i)) + s.write(text.slice(i)) + s.flush();
      expect(out, `split at ${i}`).toBe(expected);
    }
  });

  it("works one character at a time", () => {
    const s = r.createStream();
    let out = "";
    for (const ch of text) out += s.write(ch);
    expect(out + s.flush()).toBe(expected);
  });

  it("holds back at most maxPatternLength - 1 characters of plain text", () => {
    const plain = "0123456789 plain output with no secret in it, long enough to exceed the hold-back window.";
    const s = r.createStream();
    let out = "";
    for (let i = 0; i < plain.length; i++) {
      out += s.write(plain[i]!);
      expect(i + 1 - out.length).toBeLessThanOrEqual(r.maxPatternLength - 1);
    }
    expect(out + s.flush()).toBe(plain);
  });

  it("never splits a surrogate pair", () => {
    const s = createRedactor(["zzzzzzzz"]).createStream();
    const parts = [s.write("ab🔑"), s.write("cdefghij🔑kl"), s.flush()];
    for (const part of parts) expect(part).not.toMatch(/[\ud800-\udbff]$/);
    expect(parts.join("")).toBe("ab🔑cdefghij🔑kl");
  });

  it("is a pass-through without secrets", () => {
    const s = createRedactor([]).createStream();
    expect(s.write("abc")).toBe("abc");
    expect(s.flush()).toBe("");
  });
});

describe("MutableRedactor", () => {
  it("learns new values and hides them in JSON and inspect", () => {
    const m = new MutableRedactor();
    expect(m.isEmpty).toBe(true);
    m.add({ A: "first-secret" });
    m.add({ B: "second-secret", A2: "first-secret" });
    expect(m.redact("first-secret second-secret")).toBe("[redacted] [redacted]");
    expect(JSON.stringify(m)).not.toContain('secret"');
    expect(inspect(m)).not.toContain("first-secret");
  });
});
