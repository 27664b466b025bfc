import { describe, expect, it } from "vitest";
import { MarkerScanner } from "./marker-scanner.js";
import { OutputBuffer } from "./output-buffer.js";

describe("OutputBuffer", () => {
  it("keeps everything when small, trailing whitespace stripped", () => {
    const b = new OutputBuffer(16);
    b.append(Buffer.from("hello\n"));
    b.append(Buffer.from("world  \n\n"));
    expect(b.text()).toBe("hello\nworld");
    expect(b.totalBytes).toBe(15);
  });

  it("keeps head and tail only, bounded, and truncates to 15,000 + 15,000 characters", () => {
    const b = new OutputBuffer(64 * 1024);
    for (let i = 0; i < 1000; i++) b.append(Buffer.from(`${String(i).padStart(4, "0")}${"x".repeat(995)}\n`));
    expect(b.dropped).toBe(true);
    const text = b.text();
    expect(text.startsWith("0000xxx")).toBe(true);
    expect(text).toContain("\n[... Observation truncated due to length ...]\n");
    expect(text.endsWith("x".repeat(50))).toBe(true);
    expect(text.length).toBe(30_000 + "\n[... Observation truncated due to length ...]\n".length);
  });

  it("never splits a UTF-8 character at the tail's start", () => {
    const b = new OutputBuffer(8);
    b.append(Buffer.from("€€€€€€€€€€€€"));
    expect(b.text(true)).not.toContain("\uFFFD");
  });
});

describe("MarkerScanner", () => {
  it("finds markers split across chunks and passes everything else through", () => {
    const data: string[] = [];
    const markers: string[][] = [];
    const s = new MarkerScanner(
      "n0nce",
      (c) => data.push(c.toString()),
      (f) => markers.push(f),
    );
    const stream = "out1\n\x1en0nce\x1f1\x1f0\x1e\nout2 \x1e not a marker\n\x1en0nce\x1f2\x1f/tmp\x1e\n";
    for (const ch of stream) s.push(Buffer.from(ch));
    expect(markers).toEqual([
      ["1", "0"],
      ["2", "/tmp"],
    ]);
    expect(data.join("")).toBe("out1\nout2 \x1e not a marker\n");
  });
});
