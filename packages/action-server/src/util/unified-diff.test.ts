import { describe, expect, it } from "vitest";
import { unifiedDiff } from "./unified-diff.js";

// Expected texts are Python's "\n".join(difflib.unified_diff(a.split("\n"), b.split("\n"), p, p, lineterm="")).
describe("unifiedDiff", () => {
  it("is empty for equal texts", () => {
    expect(unifiedDiff("a\nb\n", "a\nb\n", "/f")).toBe("");
  });

  it("formats a one-line change with 3 lines of context", () => {
    expect(unifiedDiff("a\nb\nc", "a\nB\nc", "/f")).toBe("--- /f\n+++ /f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c");
  });

  it("formats a creation from an empty file", () => {
    expect(unifiedDiff("", "x\ny\n", "/f")).toBe("--- /f\n+++ /f\n@@ -1 +1,3 @@\n+x\n+y\n ");
  });

  it("splits distant changes into separate hunks", () => {
    const a = Array.from({ length: 16 }, (_, i) => String(i + 1)).join("\n");
    const b = a.replace("3", "X").replace("14", "Y");
    expect(unifiedDiff(a, b, "/f")).toBe(
      "--- /f\n+++ /f\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+X\n 4\n 5\n 6\n@@ -11,6 +11,6 @@\n 11\n 12\n 13\n-14\n+Y\n 15\n 16",
    );
  });

  it("lists deletions and insertions of a replaced block like difflib", () => {
    expect(unifiedDiff("x\ny\nz\n", "x\nz\n", "/f")).toBe("--- /f\n+++ /f\n@@ -1,4 +1,3 @@\n x\n-y\n z\n ");
    expect(unifiedDiff("p\nq\n", "p\nq\nr\ns\n", "/f")).toBe(
      "--- /f\n+++ /f\n@@ -1,3 +1,5 @@\n p\n q\n+r\n+s\n ",
    );
  });
});
