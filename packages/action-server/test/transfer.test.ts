import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { strToU8, unzipSync, type Zippable, zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readZipEntries } from "../src/zip/zip-reader.js";
import { startTestServer, type TestServer } from "./helpers.js";

const KEY = "transfer-key";
let t: TestServer;
let w: string;
beforeAll(async () => {
  t = await startTestServer({ sessionApiKey: KEY, maxUploadBytes: 64 * 1024 });
  w = realpathSync(t.workDir);
});
afterAll(async () => {
  await t.stop();
});

async function upload(
  destination: string | undefined,
  filename: string,
  data: Uint8Array,
  recursive = false,
) {
  const form = new FormData();
  form.append("file", new Blob([data]), filename);
  const query = new URLSearchParams({
    ...(destination !== undefined ? { destination } : {}),
    recursive: String(recursive),
  });
  const res = await fetch(`${t.server.url}/upload_file?${query}`, {
    method: "POST",
    body: form,
    headers: { "x-session-api-key": KEY },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function download(path: string) {
  const res = await fetch(`${t.server.url}/download_files?${new URLSearchParams({ path })}`, {
    headers: { "x-session-api-key": KEY },
  });
  return { res, body: new Uint8Array(await res.arrayBuffer()) };
}

const symlinkEntry = (target: string): [Uint8Array, { os: number; attrs: number }] => [
  strToU8(target),
  { os: 3, attrs: 0o120777 * 0x10000 },
];

describe("upload_file", () => {
  it("saves a plain file as destination/filename, creating the destination", async () => {
    const r = await upload(join(w, "up/single"), "notes.txt", strToU8("hello upload"));
    expect(r).toEqual({
      status: 200,
      json: { filename: "notes.txt", destination: join(w, "up/single"), recursive: false },
    });
    expect(readFileSync(join(w, "up/single/notes.txt"), "utf8")).toBe("hello upload");
  });

  it("extracts a zip (recursive) keeping modes, empty directories and internal symlinks", async () => {
    const zip = zipSync({
      "tree/a.txt": [strToU8("A"), { os: 3, attrs: 0o100755 * 0x10000 }],
      "tree/deep/b.txt": strToU8("B"),
      "tree/empty/": new Uint8Array(0),
      "tree/link": symlinkEntry("deep/b.txt"),
    } as Zippable);
    const r = await upload(join(w, "up/zip"), "tree.zip", zip, true);
    expect(r.status).toBe(200);
    expect(readFileSync(join(w, "up/zip/tree/a.txt"), "utf8")).toBe("A");
    expect(statSync(join(w, "up/zip/tree/a.txt")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(w, "up/zip/tree/deep/b.txt"), "utf8")).toBe("B");
    expect(statSync(join(w, "up/zip/tree/empty")).isDirectory()).toBe(true);
    expect(readlinkSync(join(w, "up/zip/tree/link"))).toBe("deep/b.txt");
    expect(existsSync(join(w, "up/zip/tree.zip"))).toBe(false);
  });

  it("extracts any .zip even without recursive (like the reference)", async () => {
    const r = await upload(join(w, "up/auto"), "bundle.zip", zipSync({ "x.txt": strToU8("x") }));
    expect(r.status).toBe(200);
    expect(readFileSync(join(w, "up/auto/x.txt"), "utf8")).toBe("x");
  });

  it.each([
    ["zip-slip", { "ok.txt": strToU8("ok"), "../escape.txt": strToU8("bad") }, "outside the destination"],
    ["an absolute path", { "ok.txt": strToU8("ok"), "/tmp/abs-escape.txt": strToU8("bad") }, "absolute path"],
    [
      "a symlink out",
      { "ok.txt": strToU8("ok"), out: symlinkEntry("../../etc") },
      "points outside the destination",
    ],
    ["an absolute symlink", { "ok.txt": strToU8("ok"), abs: symlinkEntry("/etc/passwd") }, "absolute path"],
    [
      "a write through its own symlink",
      { d: symlinkEntry("."), "d/x.txt": strToU8("x") },
      "through the symlink",
    ],
  ])("refuses %s with 400 and writes nothing", async (_name, files, message) => {
    const dest = join(w, `up/bad-${Math.random().toString(36).slice(2)}`);
    const r = await upload(dest, "evil.zip", zipSync(files as Zippable), true);
    expect(r.status).toBe(400);
    expect(String(r.json.detail)).toContain("Unsafe zip, nothing was extracted");
    expect(String(r.json.detail)).toContain(message);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(w, "up/escape.txt"))).toBe(false);
  });

  it("refuses to write through an existing symlink that leaves the destination", async () => {
    const dest = join(w, "up/linked");
    mkdirSync(dest, { recursive: true });
    symlinkSync("/tmp", join(dest, "out"));
    const r = await upload(dest, "x.zip", zipSync({ "out/planted.txt": strToU8("x") }), true);
    expect(r.status).toBe(400);
    expect(existsSync("/tmp/planted.txt")).toBe(false);
  });

  it("answers 400 for a relative or missing destination and for a corrupt zip", async () => {
    expect((await upload("relative/dir", "a.txt", strToU8("a"))).status).toBe(400);
    expect((await upload(undefined, "a.txt", strToU8("a"))).status).toBe(400);
    const corrupt = await upload(join(w, "up/corrupt"), "c.zip", strToU8("not a zip at all"), true);
    expect(corrupt.status).toBe(400);
    expect(String(corrupt.json.detail)).toContain("Not a valid zip file");
  });

  it("answers 413 over the configured size and keeps nothing", async () => {
    const r = await upload(join(w, "up/big"), "big.bin", new Uint8Array(200 * 1024));
    expect(r.status).toBe(413);
    expect(String(r.json.detail)).toContain("65536 bytes");
    expect(existsSync(join(w, "up/big/big.bin"))).toBe(false);
  });
});

describe("download_files", () => {
  it("streams a zip of a directory with paths relative to it, empty dirs, modes and symlinks", async () => {
    const root = join(w, "dl/tree");
    mkdirSync(join(root, "deep"), { recursive: true });
    mkdirSync(join(root, "empty"));
    writeFileSync(join(root, "a.txt"), "A");
    writeFileSync(join(root, "deep/b.txt"), "B", { mode: 0o600 });
    symlinkSync("/etc/passwd", join(root, "link"));
    const { res, body } = await download(root);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/zip");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="tree.zip"');
    const entries = unzipSync(body);
    expect(Object.keys(entries).sort()).toEqual(["a.txt", "deep/", "deep/b.txt", "empty/", "link"]);
    expect(Buffer.from(entries["a.txt"]!).toString()).toBe("A");
    // The link is stored as a link, never followed.
    expect(Buffer.from(entries.link!).toString()).toBe("/etc/passwd");
  });

  it("round-trips through upload with the same content, modes and relative links", async () => {
    const root = join(w, "dl/rt");
    mkdirSync(join(root, "deep"), { recursive: true });
    writeFileSync(join(root, "deep/b.txt"), "B", { mode: 0o600 });
    symlinkSync("deep/b.txt", join(root, "rel"));
    const { body } = await download(root);
    const back = await upload(join(w, "dl/copy"), "rt.zip", body, true);
    expect(back.status).toBe(200);
    expect(readFileSync(join(w, "dl/copy/deep/b.txt"), "utf8")).toBe("B");
    expect(statSync(join(w, "dl/copy/deep/b.txt")).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(w, "dl/copy/rel")).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(w, "dl/copy/rel"), "utf8")).toBe("B");
  });

  it("zips a single file under its own name (the reference sends an empty zip)", async () => {
    const { res, body } = await download(join(w, "dl/tree/a.txt"));
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="a.txt.zip"');
    expect(Object.keys(unzipSync(body))).toEqual(["a.txt"]);
  });

  it("deflates with zipLevel > 0, except already-compressed files", async () => {
    const z = await startTestServer({ zipLevel: 6 });
    try {
      const dir = join(z.workDir, "mixed");
      mkdirSync(dir, { recursive: true });
      const text = "compress me\n".repeat(10_000);
      writeFileSync(join(dir, "a.txt"), text);
      writeFileSync(join(dir, "img.png"), Buffer.alloc(1000, 1));
      const res = await fetch(`${z.server.url}/download_files?${new URLSearchParams({ path: dir })}`);
      const body = new Uint8Array(await res.arrayBuffer());
      expect(body.length).toBeLessThan(text.length / 10);
      const entries = unzipSync(body);
      expect(Buffer.from(entries["a.txt"]!).toString()).toBe(text);
      expect(entries["img.png"]!.length).toBe(1000);
      const zipPath = join(z.root, "mixed.zip");
      writeFileSync(zipPath, body);
      const methods = Object.fromEntries(readZipEntries(zipPath).map((e) => [e.name, e.method]));
      expect(methods).toEqual({ "a.txt": 8, "img.png": 0 });
    } finally {
      await z.stop();
    }
  });

  it("answers 400 for a relative path and 404 for a missing one", async () => {
    expect((await download("relative")).res.status).toBe(400);
    const missing = await download(join(w, "no/such/thing"));
    expect(missing.res.status).toBe(404);
    expect(JSON.parse(Buffer.from(missing.body).toString())).toEqual({
      detail: `File not found: ${join(w, "no/such/thing")}`,
    });
  });
});
