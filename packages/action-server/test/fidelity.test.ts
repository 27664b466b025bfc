// The editor (oh_aci) details where OpenHands' own server answers differently from a plain reading of its
// protocol; each test names the behaviour it matches.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Observation } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { act, call, startTestServer, type TestServer } from "./helpers.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.stop();
});

type Extras = { prev_exist: boolean; diff: string | null; _diff_cache: null };
const edit = (args: Record<string, unknown>) =>
  act(t, { action: "edit", args: { impl_source: "oh_aci", ...args } }) as Promise<
    Observation & { extras: Extras }
  >;

describe("oh_aci editor, as OpenHands answers", () => {
  it("view with view_range on a file ending in a newline shows no extra empty numbered line", async () => {
    const path = join(t.workDir, "three.txt");
    writeFileSync(path, "one\ntwo\nthree\n");
    const obs = await act(t, { action: "read", args: { path, impl_source: "oh_aci", view_range: [2, 3] } });
    expect(obs.content).toBe(
      `Here's the result of running \`cat -n\` on ${path}:\n     2\ttwo\n     3\tthree\n`,
    );
    const whole = await act(t, {
      action: "read",
      args: { path, impl_source: "oh_aci", view_range: [1, -1] },
    });
    expect(whole.content.endsWith("     3\tthree\n")).toBe(true);
  });

  it("create of a 2-line file has the diff hunk `@@ -0,0 +1,2 @@` (no context lines), and prev_exist false", async () => {
    const path = join(t.workDir, "two.txt");
    const obs = await edit({ command: "create", path, file_text: "alpha\nbeta\n" });
    expect(obs.extras.diff).toBe(`--- ${path}\n+++ ${path}\n@@ -0,0 +1,2 @@\n+alpha\n+beta`);
    expect(obs.extras.prev_exist).toBe(false);
  });

  it("reports prev_exist false for every edit, even of a file that existed", async () => {
    const path = join(t.workDir, "existing.txt");
    writeFileSync(path, "keep\nchange me\n");
    const replaced = await edit({ command: "str_replace", path, old_str: "change me", new_str: "changed" });
    expect(replaced.extras.prev_exist).toBe(false);
    expect(replaced.extras.diff).toBe(`--- ${path}\n+++ ${path}\n@@ -2 +2 @@\n-change me\n+changed`);
    const inserted = await edit({ command: "insert", path, insert_line: 1, new_str: "inserted   " });
    expect(inserted.extras.prev_exist).toBe(false);
    // openhands-aci right-strips every diff line.
    expect(inserted.extras.diff).toBe(`--- ${path}\n+++ ${path}\n@@ -1,0 +2 @@\n+inserted`);
    const undone = await edit({ command: "undo_edit", path });
    expect(undone.extras.prev_exist).toBe(false);
  });

  it('an edit error has diff "" (not null), prev_exist false and content starting with ERROR:', async () => {
    const path = join(t.workDir, "err.txt");
    writeFileSync(path, "x\n");
    const obs = await edit({ command: "str_replace", path, old_str: "absent", new_str: "y" });
    expect(obs.observation).toBe("edit");
    expect(obs.content.startsWith("ERROR:\n")).toBe(true);
    expect(obs.extras.diff).toBe("");
    expect(obs.extras.prev_exist).toBe(false);
    const missing = await edit({ command: "create", path, file_text: "again" });
    expect(missing.extras.diff).toBe("");
  });
});

describe("HTTP, as OpenHands answers (client errors stay 4xx)", () => {
  it("an upload without a `file` part answers 422 Invalid request parameters, with errors", async () => {
    const form = new FormData();
    form.append("other", "x");
    const res = await fetch(`${t.server.url}/upload_file?destination=${encodeURIComponent(t.workDir)}`, {
      method: "POST",
      body: form,
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { detail: string; errors: string[] };
    expect(body.detail).toBe("Invalid request parameters");
    expect(body.errors.join()).toContain("file");
    const notMultipart = await call(
      t,
      "POST",
      `/upload_file?destination=${encodeURIComponent(t.workDir)}`,
      "x",
    );
    expect(notMultipart.status).toBe(422);
  });

  it("a download without `path` answers 422 Invalid request parameters, with errors", async () => {
    const r = await call(t, "GET", "/download_files");
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({
      detail: "Invalid request parameters",
      errors: [expect.stringContaining("path")],
    });
  });

  it("an upload refused early (relative destination) still reads the body: the client sees the 400, not EPIPE", async () => {
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(16 * 1024 * 1024)]), "big.bin");
    const res = await fetch(`${t.server.url}/upload_file?destination=relative/dir`, {
      method: "POST",
      body: form,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toContain("must be an absolute path");
  });

  it("POST /list_files with no body is a client error, not a listing", async () => {
    const r = await call(t, "POST", "/list_files");
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ detail: "Invalid request parameters" });
  });

  it("POST /update_mcp_server answers {detail: 'MCP server updated successfully', router_error_log}", async () => {
    const r = await call(t, "POST", "/update_mcp_server", [
      { name: "fs", command: "npx", args: [], env: {} },
    ]);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      detail: "MCP server updated successfully",
      router_error_log: expect.any(String),
    });
  });
});
