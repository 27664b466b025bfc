/**
 * Attack suite: every test tries one thing hostile code in a sandbox could do to the action server and asserts
 * the server holds. File-type attacks run against the real bundle in a child process (a server that falls for
 * them must not take the test runner down); HTTP and upload attacks against a server started in-process.
 */
import { execFileSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants, deflateRawSync } from "node:zlib";
import { strToU8, Zip, ZipPassThrough, type Zippable, zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type BinServer, call, startBinServer, startTestServer, type TestServer } from "./helpers.js";

const MiB = 1024 * 1024;

/**
 * A zip entry deflated by node:zlib (Huffman only: no match search), the way fflate documents custom
 * compression. fflate's own deflate of 9 MiB of random letters took over 20 s on a loaded CI machine.
 */
class NativeDeflate extends ZipPassThrough {
  constructor(filename: string) {
    super(filename);
    this.compression = 8;
  }

  protected override process(chunk: Uint8Array<ArrayBuffer>, final: boolean): void {
    this.ondata(null, new Uint8Array(deflateRawSync(chunk, { strategy: constants.Z_HUFFMAN_ONLY })), final);
  }
}

/** Zips `files` (each deflated by {@link NativeDeflate}) synchronously. */
function nativeZip(files: Record<string, Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  let error: Error | null = null;
  const zip = new Zip((err, chunk) => {
    if (err) error = err;
    else parts.push(chunk);
  });
  for (const [name, data] of Object.entries(files)) {
    const entry = new NativeDeflate(name);
    zip.add(entry);
    entry.push(data, true);
  }
  zip.end();
  if (error) throw error;
  return Buffer.concat(parts);
}

interface Obs {
  observation: string;
  content: string;
  extras: Record<string, unknown>;
}

describe("file actions against devices, FIFOs, sockets and /proc (real bundle)", () => {
  let root: string;
  let s: BinServer;
  let w: string;
  let socketServer: Server;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "ar-as-attack-"));
    s = await startBinServer(inject("binPath"), root);
    w = realpathSync(join(root, "work"));
    execFileSync("mkfifo", [join(w, "fifo")]);
    symlinkSync("/dev/zero", join(w, "zero-link"));
    socketServer = createServer();
    await new Promise<void>((res) => socketServer.listen(join(w, "sock"), res));
  });
  afterAll(async () => {
    await s.stop();
    socketServer.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** POSTs an action; a server that hangs fails the test after `timeoutMs` instead of hanging it. */
  async function act(action: Record<string, unknown>, timeoutMs = 10_000): Promise<Obs> {
    const res = await fetch(`${s.url}/execute_action`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-session-api-key": s.key },
      body: JSON.stringify({ action }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Obs;
  }

  /** Best of three `/alive` round trips in ms (one slow sample on a loaded machine is not a hang). */
  async function aliveMs(): Promise<number> {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const res = await fetch(`${s.url}/alive`, { signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      await res.text();
      best = Math.min(best, performance.now() - started);
    }
    return best;
  }

  it("read /dev/zero answers NOT_A_REGULAR_FILE at once and the server's memory stays low", async () => {
    // A read of a regular file first: the server's first action (cold code) took 2.7 s on a loaded machine, so
    // /dev/zero is timed against a warm server and bounded relative to that read.
    writeFileSync(join(w, "regular.txt"), "x\n");
    let started = performance.now();
    expect((await act({ action: "read", args: { path: join(w, "regular.txt") } })).observation).toBe("read");
    const regularMs = performance.now() - started;
    const before = s.rssBytes();
    started = performance.now();
    const obs = await act({ action: "read", args: { path: "/dev/zero" } });
    expect(performance.now() - started).toBeLessThan(regularMs + 2000);
    expect(obs.observation).toBe("error");
    expect(obs.extras.error_id).toBe("NOT_A_REGULAR_FILE");
    expect(obs.content).toMatch(/\/dev\/zero is a character device, not a regular file/);
    expect(s.rssBytes() - before).toBeLessThan(64 * MiB);
  });

  it("a symlink to /dev/zero is refused the same way (the check is on what was opened)", async () => {
    const obs = await act({ action: "read", args: { path: join(w, "zero-link") } });
    expect(obs.extras.error_id).toBe("NOT_A_REGULAR_FILE");
  });

  it("the editor's view of /dev/zero is refused too", async () => {
    const obs = await act({ action: "read", args: { path: "/dev/zero", impl_source: "oh_aci" } });
    expect(obs.observation).toBe("error");
    expect(obs.extras.error_id).toBe("NOT_A_REGULAR_FILE");
  });

  it("read of a FIFO answers at once and /alive answers within 100 ms", async () => {
    const pending = act({ action: "read", args: { path: join(w, "fifo") } }, 5000);
    expect(await aliveMs()).toBeLessThan(100);
    const obs = await pending;
    expect(obs.extras.error_id).toBe("NOT_A_REGULAR_FILE");
    expect(obs.content).toContain("is a FIFO");
    expect(await aliveMs()).toBeLessThan(100);
  });

  it("write to a FIFO (no reader) and str_replace on a FIFO are refused without blocking", async () => {
    const written = await act({ action: "write", args: { path: join(w, "fifo"), content: "x" } }, 5000);
    expect(written.observation).toBe("error");
    expect(written.extras.error_id).toBe("NOT_A_REGULAR_FILE");
    const edited = await act(
      {
        action: "edit",
        args: { command: "str_replace", path: join(w, "fifo"), old_str: "a", new_str: "b" },
      },
      5000,
    );
    expect(edited.observation).toBe("error");
    expect(edited.extras.error_id).toBe("NOT_A_REGULAR_FILE");
    expect(await aliveMs()).toBeLessThan(100);
  });

  it("read of a unix socket is NOT_A_REGULAR_FILE", async () => {
    const obs = await act({ action: "read", args: { path: join(w, "sock") } });
    expect(obs.extras.error_id).toBe("NOT_A_REGULAR_FILE");
    expect(obs.content).toContain("is a socket");
  });

  it("/proc/self/pagemap (a 'regular' file stat calls empty, endless in fact) is bounded while reading", async () => {
    const before = s.rssBytes();
    const started = performance.now();
    const obs = await act({ action: "read", args: { path: "/proc/self/pagemap" } });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(obs.observation).toBe("error");
    expect(["ERROR_BINARY_FILE", "FILE_TOO_LARGE", "IO_ERROR"]).toContain(obs.extras.error_id);
    expect(s.rssBytes() - before).toBeLessThan(160 * MiB);
  });

  it("/proc/self/mem gives an IO error observation and the server lives on", async () => {
    const obs = await act({ action: "read", args: { path: "/proc/self/mem" } });
    expect(obs.observation).toBe("error");
    expect(obs.extras.error_id).toBe("IO_ERROR");
    expect(await aliveMs()).toBeLessThan(100);
  });

  it("write to /dev/null and create over a device are refused; regular files still work", async () => {
    const devnull = await act({ action: "write", args: { path: "/dev/null", content: "x" } });
    expect(devnull.extras.error_id).toBe("NOT_A_REGULAR_FILE");
    const ok = await act({ action: "write", args: { path: join(w, "fine.txt"), content: "fine" } });
    expect(ok.observation).toBe("write");
    expect(readFileSync(join(w, "fine.txt"), "utf8")).toBe("fine\n");
    const read = await act({ action: "read", args: { path: join(w, "fine.txt") } });
    expect(read.content).toBe("fine\n");
  });
});

describe("HTTP and upload attacks (in-process server)", () => {
  const KEY = "attack-key";
  let t: TestServer;
  let w: string;
  beforeAll(async () => {
    t = await startTestServer({
      sessionApiKey: KEY,
      maxUploadBytes: 4 * MiB,
      maxJsonBodyBytes: 1 * MiB,
      maxUnzippedBytes: 8 * MiB,
      maxZipEntries: 50,
    });
    w = realpathSync(t.workDir);
  });
  afterAll(async () => {
    await t.stop();
  });

  async function upload(destination: string, filename: string, data: Uint8Array, recursive = true) {
    const form = new FormData();
    form.append("file", new Blob([data]), filename);
    const query = new URLSearchParams({ destination, recursive: String(recursive) });
    const res = await fetch(`${t.server.url}/upload_file?${query}`, {
      method: "POST",
      body: form,
      headers: { "x-session-api-key": KEY },
    });
    return { status: res.status, json: (await res.json()) as { detail?: string } };
  }

  /** A directory holding one marker file; after a refused upload it must hold exactly that. */
  function destWithMarker(name: string): string {
    const dest = join(w, name);
    mkdirSync(dest, { recursive: true });
    writeFileSync(join(dest, "marker"), "m");
    return dest;
  }

  describe("zip bombs", () => {
    it("a 2 MiB-of-zeros zip (ratio ~1000) is 413 naming the ratio limit, nothing written", async () => {
      const dest = destWithMarker("bomb-ratio");
      const zip = zipSync({ "zeros.bin": new Uint8Array(2 * MiB) }, { level: 9 });
      const r = await upload(dest, "bomb.zip", zip);
      expect(r.status).toBe(413);
      expect(r.json.detail).toMatch(/compression ratio.*maxZipCompressionRatio.*200/);
      expect(readdirSync(dest)).toEqual(["marker"]);
    });

    it("more real bytes than maxUnzippedBytes is 413 naming the limit; a new destination is not created", async () => {
      const dest = join(w, "bomb-total/new");
      // Four random letters: about 2 bits a byte, so the ratio (~4) passes and only the total trips.
      const text = randomFillSync(new Uint8Array(9 * MiB));
      for (let i = 0; i < text.length; i++) text[i] = 97 + (text[i]! & 3);
      const zip = nativeZip({ "a.txt": text.subarray(0, 5 * MiB), "b.txt": text.subarray(5 * MiB) });
      expect(zip.length).toBeLessThan(4 * MiB);
      const r = await upload(dest, "big.zip", zip);
      expect(r.status).toBe(413);
      expect(r.json.detail).toMatch(/maxUnzippedBytes.*8388608 bytes/);
      expect(existsSync(join(w, "bomb-total"))).toBe(false);
    });

    it("more entries than maxZipEntries is 413 naming the limit", async () => {
      const dest = destWithMarker("bomb-entries");
      const files: Zippable = {};
      for (let i = 0; i < 60; i++) files[`f${i}.txt`] = strToU8(`file ${i}`);
      const r = await upload(dest, "many.zip", zipSync(files));
      expect(r.status).toBe(413);
      expect(r.json.detail).toMatch(/60 entries.*maxZipEntries.*50/);
      expect(readdirSync(dest)).toEqual(["marker"]);
    });

    it("an entry whose header understates its size is stopped on the real inflated bytes, nothing written", async () => {
      const dest = destWithMarker("bomb-liar");
      const zip = zipSync({ "ok.txt": strToU8("fine"), "liar.bin": new Uint8Array(4 * MiB) }, { level: 9 });
      // Declare 100 bytes for liar.bin in its central directory record (the one the server reads).
      const view = Buffer.from(zip);
      const at = view.lastIndexOf(Buffer.from("liar.bin")) - 46;
      expect(view.readUInt32LE(at)).toBe(0x02014b50);
      view.writeUInt32LE(100, at + 24);
      const started = performance.now();
      const r = await upload(dest, "liar.zip", view);
      expect(performance.now() - started).toBeLessThan(5000);
      expect([400, 413]).toContain(r.status);
      expect(r.json.detail).toMatch(/liar\.bin/);
      expect(readdirSync(dest)).toEqual(["marker"]);
    });

    it("a corrupt entry after good ones leaves nothing behind (extraction is staged)", async () => {
      const dest = destWithMarker("staged");
      const zip = Buffer.from(zipSync({ "good.txt": strToU8("good"), "bad.txt": strToU8("bad!") }));
      const at = zip.lastIndexOf(Buffer.from("bad.txt")) - 46;
      zip.writeUInt32LE((zip.readUInt32LE(at + 16) ^ 1) >>> 0, at + 16); // wrong CRC
      const r = await upload(dest, "crc.zip", zip);
      expect(r.status).toBe(400);
      expect(r.json.detail).toMatch(/bad\.txt.*CRC/);
      expect(readdirSync(dest)).toEqual(["marker"]);
    });

    it("setuid, setgid and sticky bits are dropped from extracted files and directories", async () => {
      const dest = join(w, "modes");
      const zip = zipSync({
        suid: [strToU8("#!/bin/sh\n"), { os: 3, attrs: 0o104755 * 0x10000 }],
        sgid: [strToU8("x"), { os: 3, attrs: 0o102755 * 0x10000 }],
        "dir/": [new Uint8Array(0), { os: 3, attrs: (0o043775 * 0x10000) | 0x10 }],
        "dir/inside": strToU8("in"),
      } as Zippable);
      const r = await upload(dest, "modes.zip", zip);
      expect(r.status).toBe(200);
      expect(statSync(join(dest, "suid")).mode & 0o7777).toBe(0o755);
      expect(statSync(join(dest, "sgid")).mode & 0o7000).toBe(0);
      expect(statSync(join(dest, "dir")).mode & 0o7000).toBe(0);
      expect(readFileSync(join(dest, "dir/inside"), "utf8")).toBe("in");
    });
  });

  describe("non-UTF-8 file names", () => {
    it("a download keeps them as raw bytes (UTF-8 flag off) and an upload of that zip recreates them", async () => {
      const dir = join(w, "raw-names");
      mkdirSync(dir);
      const raw = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]); // "f\xff\xfe.txt"
      writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), raw]), "raw bytes");
      writeFileSync(join(dir, "héllo.txt"), "utf8 name");
      writeFileSync(join(dir, "plain.txt"), "plain");
      const res = await fetch(`${t.server.url}/download_files?${new URLSearchParams({ path: dir })}`, {
        headers: { "x-session-api-key": KEY },
      });
      expect(res.status).toBe(200);
      const zip = Buffer.from(await res.arrayBuffer());
      const names = centralDirectory(zip);
      expect(names).toHaveLength(3);
      const rawEntry = names.find((n) => n.name.equals(raw));
      expect(rawEntry, "the non-UTF-8 name is in the zip, byte for byte").toBeDefined();
      expect(rawEntry!.flags & 0x800).toBe(0);
      const utf8Entry = names.find((n) => n.name.equals(Buffer.from("héllo.txt")));
      expect(utf8Entry!.flags & 0x800).toBe(0x800);

      const back = join(w, "raw-back");
      const r = await upload(back, "names.zip", zip);
      expect(r.status).toBe(200);
      const listed = readdirSync(back, { encoding: "buffer" });
      expect(listed.some((n) => n.equals(raw))).toBe(true);
      expect(readFileSync(Buffer.concat([Buffer.from(`${back}/`), raw]), "utf8")).toBe("raw bytes");
      expect(readFileSync(join(back, "héllo.txt"), "utf8")).toBe("utf8 name");
    });
  });

  describe("NUL bytes in paths", () => {
    it("upload destination, download path and list_files path are 400 naming the parameter", async () => {
      const up = await upload(`${w}/a\0b`, "x.txt", strToU8("x"), false);
      expect(up.status).toBe(400);
      expect(up.json.detail).toMatch(/destination.*NUL byte/);
      const down = await call(
        { server: t.server, key: KEY },
        "GET",
        `/download_files?path=${encodeURIComponent(`${w}/a\0b`)}`,
      );
      expect(down.status).toBe(400);
      expect((down.json as { detail: string }).detail).toMatch(/path.*NUL byte/);
      const list = await call({ server: t.server, key: KEY }, "POST", "/list_files", { path: "a\0b" });
      expect(list.status).toBe(400);
      expect((list.json as { detail: string }).detail).toMatch(/path.*NUL byte/);
    });

    it("read, write, edit and the editor's view answer an ErrorObservation with error_id INVALID_PATH", async () => {
      const path = `${w}/evil\0.txt`;
      for (const action of [
        { action: "read", args: { path } },
        { action: "read", args: { path, impl_source: "oh_aci" } },
        { action: "write", args: { path, content: "x" } },
        { action: "edit", args: { command: "create", path, file_text: "x" } },
        { action: "edit", args: { command: "view", path } },
      ]) {
        const r = await call({ server: t.server, key: KEY }, "POST", "/execute_action", { action });
        expect(r.status, JSON.stringify(action)).toBe(200);
        const obs = r.json as Obs;
        expect(obs.observation, JSON.stringify(action)).toBe("error");
        expect(obs.extras.error_id).toBe("INVALID_PATH");
        expect(obs.content).toMatch(/contains a NUL byte/);
      }
    });
  });

  describe("HEAD", () => {
    it("HEAD works wherever GET does, without a body; elsewhere it is 405", async () => {
      for (const path of ["/alive", "/server_info", "/vscode/connection_token"]) {
        const res = await fetch(t.server.url + path, {
          method: "HEAD",
          headers: { "x-session-api-key": KEY },
        });
        expect(res.status, path).toBe(200);
        expect(await res.text()).toBe("");
      }
      const dl = await fetch(`${t.server.url}/download_files?${new URLSearchParams({ path: w })}`, {
        method: "HEAD",
        headers: { "x-session-api-key": KEY },
      });
      expect(dl.status).toBe(200);
      expect(dl.headers.get("content-type")).toBe("application/zip");
      expect(await dl.text()).toBe("");
      const post = await fetch(`${t.server.url}/execute_action`, {
        method: "HEAD",
        headers: { "x-session-api-key": KEY },
      });
      expect(post.status).toBe(405);
    });
  });
});

describe("early answers with a large body are visible to fetch, no EPIPE (real bundle: a separate process)", () => {
  let root: string;
  let s: BinServer;
  let w: string;
  const KEY = "bin-attack-key";
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "ar-as-early-"));
    s = await startBinServer(inject("binPath"), root, {
      ACTION_SERVER_MAX_UPLOAD_BYTES: String(4 * MiB),
      ACTION_SERVER_MAX_JSON_BODY_BYTES: String(1 * MiB),
    });
    w = realpathSync(join(root, "work"));
  });
  afterAll(async () => {
    await s.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function upload(destination: string, filename: string, data: Uint8Array) {
    const form = new FormData();
    form.append("file", new Blob([data]), filename);
    const res = await fetch(`${s.url}/upload_file?${new URLSearchParams({ destination })}`, {
      method: "POST",
      body: form,
      headers: { "x-session-api-key": KEY },
    });
    return { status: res.status, json: (await res.json()) as { detail?: string } };
  }
  const big = () => new Uint8Array(16 * MiB);

  it("413 upload too large", async () => {
    const r = await upload(join(w, "early"), "big.bin", big());
    expect(r.status).toBe(413);
  });

  it("400 relative destination", async () => {
    const form = new FormData();
    form.append("file", new Blob([big()]), "big.bin");
    const res = await fetch(`${s.url}/upload_file?destination=relative/dir`, {
      method: "POST",
      body: form,
      headers: { "x-session-api-key": KEY },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/absolute/);
  });

  it("413 JSON body over maxJsonBodyBytes, 403 without a key, 404 unknown path", async () => {
    const body = `{"action":{"action":"run","args":{"command":"${"x".repeat(8 * MiB)}"}}}`;
    for (const [path, key, status] of [
      ["/execute_action", KEY, 413],
      ["/execute_action", undefined, 403],
      ["/nowhere", KEY, 404],
    ] as const) {
      const res = await fetch(s.url + path, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...(key ? { "x-session-api-key": key } : {}) },
      });
      expect(res.status, path).toBe(status);
      await res.text();
    }
  });

  it("413 on an upload with no declared length (chunked) still reaches the client", async () => {
    const boundary = "----attack";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`;
    const chunks = [strToU8(head), big(), strToU8(`\r\n--${boundary}--\r\n`)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const res = await fetch(`${s.url}/upload_file?destination=${encodeURIComponent(join(w, "chunked"))}`, {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { "x-session-api-key": KEY, "content-type": `multipart/form-data; boundary=${boundary}` },
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(existsSync(join(w, "chunked", "big.bin"))).toBe(false);
  });
});

/** Names and general-purpose flags of a zip's central directory, read by hand (no library decoding). */
function centralDirectory(zip: Buffer): { name: Buffer; flags: number }[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const out: { name: Buffer; flags: number }[] = [];
  for (let i = 0; i < count; i++) {
    const nameLength = zip.readUInt16LE(p + 28);
    out.push({ flags: zip.readUInt16LE(p + 8), name: zip.subarray(p + 46, p + 46 + nameLength) });
    p += 46 + nameLength + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
  }
  return out;
}
