import { chmodSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ErrorObservation, FileEditObservation, FileReadObservation } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { act, call, run, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
let w: string;
beforeAll(async () => {
  t = await startTestServer();
  w = realpathSync(t.workDir);
});
afterAll(async () => {
  await t.stop();
});

const read = (args: Record<string, unknown>) =>
  act(t, { action: "read", args }) as Promise<FileReadObservation | ErrorObservation>;
const write = (args: Record<string, unknown>) => act(t, { action: "write", args });
const edit = (args: Record<string, unknown>) =>
  act(t, { action: "edit", args }) as Promise<FileEditObservation>;

describe("read", () => {
  it("reads whole files and 0-based line ranges, relative to the shell's cwd", async () => {
    writeFileSync(join(w, "three.txt"), "line1\nline2\nline3\n");
    const all = (await read({ path: "three.txt" })) as FileReadObservation;
    expect(all).toEqual({
      observation: "read",
      content: "line1\nline2\nline3\n",
      message: `I read the file ${w}/three.txt.`,
      extras: { path: `${w}/three.txt`, impl_source: "default" },
    });
    expect((await read({ path: `${w}/three.txt`, start: 1, end: 2 })).content).toBe("line2\n");
    expect((await read({ path: "three.txt", start: 2 })).content).toBe("line3\n");
    mkdirSync(join(w, "deeper"));
    writeFileSync(join(w, "deeper", "x.txt"), "in deeper");
    await run(t, "cd deeper");
    expect((await read({ path: "x.txt" })).content).toBe("in deeper");
    await run(t, "cd ..");
  });

  it("returns images and PDFs as data URLs", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    writeFileSync(join(w, "pic.PNG"), png);
    expect((await read({ path: "pic.PNG" })).content).toBe(`data:image/png;base64,${png.toString("base64")}`);
    writeFileSync(join(w, "doc.pdf"), "%PDF-1.4 fake");
    expect((await read({ path: "doc.pdf" })).content).toBe(
      `data:application/pdf;base64,${Buffer.from("%PDF-1.4 fake").toString("base64")}`,
    );
  });

  it("gives clear errors for binary, missing, directories and non-UTF-8 files", async () => {
    writeFileSync(join(w, "blob.bin"), Buffer.from([1, 2, 0, 3]));
    const binary = await read({ path: "blob.bin" });
    expect(binary.observation).toBe("error");
    expect(binary.content).toBe("ERROR_BINARY_FILE");
    const missing = await read({ path: "nope.txt" });
    expect(missing.observation).toBe("error");
    expect(missing.content).toBe(`File not found: ${w}/nope.txt. Your current working directory is ${w}.`);
    // Error ids let clients branch without reading message text.
    expect(binary.extras).toEqual({ error_id: "ERROR_BINARY_FILE" });
    expect(missing.extras).toEqual({ error_id: "FILE_NOT_FOUND" });
    const dir = await read({ path: w });
    expect(dir.content).toBe(`Path is a directory: ${w}. You can only read files`);
    expect(dir.extras).toEqual({ error_id: "IS_DIRECTORY" });
    writeFileSync(join(w, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const latin = await read({ path: "latin1.txt" });
    expect(latin.content).toBe(`File could not be decoded as utf-8: ${w}/latin1.txt.`);
    expect(latin.extras).toEqual({ error_id: "DECODE_ERROR" });
  });

  it("impl_source oh_aci views like `cat -n`, honours view_range, and reports errors in content", async () => {
    writeFileSync(join(w, "v.py"), "a\n\tb\nc\n");
    const view = await read({ path: `${w}/v.py`, impl_source: "oh_aci" });
    expect(view.observation).toBe("read");
    expect(view.content).toBe(
      `Here's the result of running \`cat -n\` on ${w}/v.py:\n     1\ta\n     2\t        b\n     3\tc\n     4\t\n`,
    );
    const ranged = await read({ path: `${w}/v.py`, impl_source: "oh_aci", view_range: [2, 2] });
    expect(ranged.content).toContain("     2\t        b\n");
    expect(ranged.content).not.toContain("     1\ta");
    const relative = await read({ path: "v.py", impl_source: "oh_aci" });
    expect(relative.content).toBe(
      `ERROR:\nInvalid \`path\` parameter: v.py. The path should be an absolute path, starting with \`/\`. Maybe you meant ${w}/v.py?`,
    );
  });
});

describe("write", () => {
  it("writes whole files with a final newline (not doubled), creating parents, mode 0664", async () => {
    const obs = await write({ path: "new/dir/f.txt", content: "one\ntwo" });
    expect(obs).toEqual({
      observation: "write",
      content: "",
      message: `I wrote to the file ${w}/new/dir/f.txt.`,
      extras: { path: `${w}/new/dir/f.txt` },
    });
    expect(readFileSync(join(w, "new/dir/f.txt"), "utf8")).toBe("one\ntwo\n");
    expect(statSync(join(w, "new/dir/f.txt")).mode & 0o777).toBe(0o664);
    await write({ path: "new/dir/f.txt", content: "ends\n" });
    expect(readFileSync(join(w, "new/dir/f.txt"), "utf8")).toBe("ends\n");
  });

  it("splices lines start..end of an existing file and keeps its mode", async () => {
    const path = join(w, "splice.sh");
    writeFileSync(path, "l0\nl1\nl2\nl3\n");
    chmodSync(path, 0o755);
    await write({ path, content: "NEW", start: 1, end: 2 });
    expect(readFileSync(path, "utf8")).toBe("l0\nNEW\nl2\nl3\n");
    expect(statSync(path).mode & 0o777).toBe(0o755);
  });

  it("refuses to write a directory", async () => {
    const obs = await write({ path: w, content: "x" });
    expect(obs.observation).toBe("error");
    expect(obs.content).toBe(`Path is a directory: ${w}. You can only write to files`);
  });
});

describe("edit (str_replace_editor)", () => {
  it("create, str_replace, insert, undo_edit with diffs and snippets", async () => {
    const path = join(w, "code.py");
    const created = await edit({ command: "create", path, file_text: "def f():\n    return 1\n" });
    expect(created.observation).toBe("edit");
    expect(created.content).toBe(`File created successfully at: ${path}`);
    expect(created.extras).toMatchObject({
      path,
      prev_exist: false,
      impl_source: "oh_aci",
      _diff_cache: null,
    });
    const replaced = await edit({ command: "str_replace", path, old_str: "return 1", new_str: "return 2" });
    expect(replaced.content).toContain(
      `The file ${path} has been edited. Here's the result of running \`cat -n\` on a snippet of ${path}:`,
    );
    expect(replaced.content).toContain("     2\t    return 2");
    expect(replaced.extras.old_content).toBe("return 1");
    expect(replaced.extras.new_content).toBe("return 2");
    // OpenHands: prev_exist is false for every oh_aci edit; the diff has no context lines (openhands-aci).
    expect(replaced.extras.prev_exist).toBe(false);
    expect(replaced.extras.diff).toBe(`--- ${path}\n+++ ${path}\n@@ -2 +2 @@\n-    return 1\n+    return 2`);
    const inserted = await edit({ command: "insert", path, insert_line: 0, new_str: "# header" });
    expect(inserted.content).toContain("     1\t# header");
    expect(readFileSync(path, "utf8")).toBe("# header\ndef f():\n    return 2\n");
    const undone = await edit({ command: "undo_edit", path });
    expect(undone.content).toContain(`Last edit to ${path} undone successfully.`);
    expect(readFileSync(path, "utf8")).toBe("def f():\n    return 2\n");
  });

  it("reports editor errors as edit observations starting with ERROR:", async () => {
    const path = join(w, "e.txt");
    writeFileSync(path, "abc abc\nxyz\n");
    const absent = await edit({ command: "str_replace", path, old_str: "zzz", new_str: "y" });
    expect(absent.observation).toBe("edit");
    expect(absent.content).toBe(
      `ERROR:\nNo replacement was performed, old_str \`zzz\` did not appear verbatim in ${path}.`,
    );
    const twice = await edit({ command: "str_replace", path, old_str: "abc", new_str: "y" });
    expect(twice.content).toBe(
      "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `abc` in lines [1]. Please ensure it is unique.",
    );
    const exists = await edit({ command: "create", path, file_text: "x" });
    expect(exists.content).toBe(
      `ERROR:\nInvalid \`path\` parameter: ${path}. File already exists at: ${path}. Cannot overwrite files using command \`create\`.`,
    );
    const rel = await edit({ command: "view", path: "e.txt" });
    expect(rel.content).toContain(`Maybe you meant ${w}/e.txt?`);
    const missingArg = await edit({ command: "insert", path, new_str: "x" });
    expect(missingArg.content).toBe("ERROR:\nParameter `insert_line` is required for command: insert.");
    const badLine = await edit({ command: "insert", path, insert_line: 9, new_str: "x" });
    expect(badLine.content).toBe(
      "ERROR:\nInvalid `insert_line` parameter: 9. It should be within the range of allowed values: [0, 2]",
    );
    const noHistory = await edit({ command: "undo_edit", path });
    expect(noHistory.content).toBe(`ERROR:\nNo edit history found for ${path}.`);
    expect(readFileSync(path, "utf8")).toBe("abc abc\nxyz\n");
  });

  it("views directories two levels deep without hidden items, and clips long output at 16,000 characters", async () => {
    mkdirSync(join(w, "tree/a/b/c"), { recursive: true });
    writeFileSync(join(w, "tree/.hidden"), "");
    writeFileSync(join(w, "tree/a/file.txt"), "");
    const view = await edit({ command: "view", path: join(w, "tree") });
    expect(view.content).toBe(
      `Here's the files and directories up to 2 levels deep in ${w}/tree, excluding hidden items:\n${w}/tree/\n${w}/tree/a/\n${w}/tree/a/b/\n${w}/tree/a/file.txt\n\n1 hidden files/directories in this directory are excluded. You can use 'ls -la ${w}/tree' to see them.`,
    );
    writeFileSync(join(w, "big.txt"), "x".repeat(20_000));
    const big = await edit({ command: "view", path: join(w, "big.txt") });
    expect(big.content).toContain("<response clipped>");
    expect(big.content.length).toBeLessThan(16_500);
  });

  it("llm_based_edit is refused with an explanation", async () => {
    const obs = await act(t, {
      action: "edit",
      args: { command: "view", path: w, impl_source: "llm_based_edit" },
    });
    expect(obs.observation).toBe("error");
    expect(obs.content).toContain("llm_based_edit");
  });
});

describe("list_files", () => {
  it("lists directories first with a trailing slash, each group case-insensitively, dotfiles included", async () => {
    const dir = join(w, "listing");
    for (const d of ["Beta", "sub", ".git"]) mkdirSync(join(dir, d), { recursive: true });
    for (const f of ["Zeta.txt", "alpha.txt", ".hidden", "beta.md"]) writeFileSync(join(dir, f), "");
    const r = await call(t, "POST", "/list_files", { path: dir });
    expect(r.json).toEqual([".git/", "Beta/", "sub/", ".hidden", "alpha.txt", "beta.md", "Zeta.txt"]);
    expect((await call(t, "POST", "/list_files", { path: "listing" })).json).toEqual(r.json);
  });

  it("lists the initial working dir without a path ({}); missing or file paths give []", async () => {
    await run(t, "cd /tmp");
    const noPath = await call(t, "POST", "/list_files", {});
    expect(noPath.status).toBe(200);
    expect(noPath.json).toContain("listing/");
    expect((await call(t, "POST", "/list_files", { path: "/does/not/exist" })).json).toEqual([]);
    expect((await call(t, "POST", "/list_files", { path: join(w, "three.txt") })).json).toEqual([]);
    await run(t, `cd ${w}`);
  });
});

describe("other actions", () => {
  it("run_ipython keeps state between cells and reports the Jupyter extras", async () => {
    await act(t, { action: "run_ipython", args: { code: "x = 41" } });
    const obs = await act(t, { action: "run_ipython", args: { code: "print(x + 1)\nx * 2" } });
    expect(obs.observation).toBe("run_ipython");
    expect((obs as { success?: boolean }).success).toBe(true);
    expect(obs.content).toMatch(
      /^42\n82\n\[Jupyter current working directory: .+\]\n\[Jupyter Python interpreter: .+\]$/,
    );
    const err = await act(t, { action: "run_ipython", args: { code: "1/0", include_extra: false } });
    expect(err.content).toContain("ZeroDivisionError");
    expect(err.content).not.toContain("Jupyter");
    const timed = await act(t, {
      action: "run_ipython",
      args: { code: "import time; time.sleep(30)", include_extra: false },
      timeout: 0.5,
    });
    expect(timed.content).toContain("timed out after 0.5 seconds");
    const after = await act(t, { action: "run_ipython", args: { code: "x", include_extra: false } });
    expect(after.content).toBe("41");
  });

  it("browse answers the documented not-supported ErrorObservation", async () => {
    const obs = await act(t, { action: "browse", args: { url: "https://example.com" } });
    expect(obs).toEqual({
      observation: "error",
      content: "Browser functionality is not supported or disabled.",
      message: "Browser functionality is not supported or disabled.",
      extras: { error_id: "" },
    });
  });
});

describe("run_ipython without Python", () => {
  it("answers an ErrorObservation saying Python is not available", async () => {
    const t2 = await startTestServer({ pythonPath: "/nonexistent/python3" });
    try {
      const obs = await act(t2, { action: "run_ipython", args: { code: "1" } });
      expect(obs.observation).toBe("error");
      expect(obs.content).toContain("Python is not available in this sandbox");
    } finally {
      await t2.stop();
    }
  });
});
