import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ModalClient,
  type Sandbox,
  SandboxFilesystemDirectoryNotEmptyError,
  SandboxFilesystemIsADirectoryError,
  SandboxFilesystemNotADirectoryError,
  SandboxFilesystemNotFoundError,
  SandboxFilesystemPathAlreadyExistsError,
  SandboxFilesystemPermissionError,
} from "modal";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { clientFor, seenInSandbox } from "./helpers.js";

let emu: ModalEmulator;
let client: ModalClient;
let sb: Sandbox;
const local = mkdtempSync(join(tmpdir(), "modal-emulator-fs-"));

beforeAll(async () => {
  emu = await startModalEmulator();
  client = clientFor(emu);
  const app = await client.apps.fromName("fs", { createIfMissing: true });
  sb = await client.sandboxes.create(app, client.images.fromRegistry("alpine:3.21"), {
    workdir: "/workspace",
  });
});
afterAll(async () => {
  await emu.close();
  rmSync(local, { recursive: true, force: true });
});

/** `path` as the sandbox's shell sees it (under isolation "none", shell strings are not remapped). */
const seen = (path: string): string => seenInSandbox(emu, sb.sandboxId, path);

async function sh(script: string): Promise<string> {
  const p = await sb.exec(["sh", "-c", script]);
  const out = await p.stdout.readText();
  expect(await p.wait()).toBe(0);
  return out;
}

test("write and read text and bytes (larger than one 256 KiB stdin chunk), visible to execs both ways", async () => {
  await sb.filesystem.writeText("hello fs", "/workspace/a/b/hello.txt");
  expect(await sb.filesystem.readText("/workspace/a/b/hello.txt")).toBe("hello fs");
  expect(await sh(`cat ${seen("/workspace/a/b/hello.txt")}`)).toBe("hello fs");

  const big = randomBytes(700 * 1024);
  await sb.filesystem.writeBytes(big, "/tmp/big.bin");
  expect(Buffer.from(await sb.filesystem.readBytes("/tmp/big.bin")).equals(big)).toBe(true);
  expect(await sh(`wc -c < ${seen("/tmp/big.bin")}`)).toBe(`${big.length}\n`);

  await sh(`printf 'from exec' > ${seen("/workspace/from-exec.txt")}`);
  expect(await sb.filesystem.readText("/workspace/from-exec.txt")).toBe("from exec");
});

test("paths are the sandbox's: /workspace and /tmp live under its root, not on the host", async () => {
  const summary = emu.listSandboxes().find((s) => s.sandboxId === sb.sandboxId)!;
  expect(readFileSync(join(summary.root, "workspace/a/b/hello.txt"), "utf8")).toBe("hello fs");
  expect(await sh("echo $HOME")).toBe(
    emu.isolation === "bwrap" ? "/root\n" : `${join(summary.root, "root")}\n`,
  );
});

test("copyFromLocal and copyToLocal", async () => {
  writeFileSync(join(local, "up.txt"), "uploaded");
  await sb.filesystem.copyFromLocal(join(local, "up.txt"), "/workspace/up.txt");
  await sb.filesystem.copyToLocal("/workspace/up.txt", join(local, "down", "copy.txt"));
  expect(readFileSync(join(local, "down", "copy.txt"), "utf8")).toBe("uploaded");
});

test("listFiles, stat, makeDirectory, remove", async () => {
  await sb.filesystem.makeDirectory("/workspace/dir/nested");
  await sb.filesystem.writeText("x", "/workspace/dir/file.txt");
  // The target is stored as written; only where the link is created must be the sandbox's view.
  await sh(`ln -s /workspace/dir/file.txt ${seen("/workspace/dir/link")}`);
  const entries = await sb.filesystem.listFiles("/workspace/dir");
  expect(entries.map((e) => [e.name, e.path, e.type])).toEqual([
    ["file.txt", "/workspace/dir/file.txt", "file"],
    ["link", "/workspace/dir/link", "symlink"],
    ["nested", "/workspace/dir/nested", "directory"],
  ]);
  const link = entries.find((e) => e.name === "link")!;
  expect(link.symlinkTarget).toBe("/workspace/dir/file.txt");
  const st = await sb.filesystem.stat("/workspace/dir/file.txt");
  expect(st).toMatchObject({ name: "file.txt", type: "file", size: 1, owner: expect.any(String) });
  expect(st.permissions).toMatch(/^[r-][w-][x-]{1}[r-][w-][x-][r-][w-][x-]$/);
  expect(Math.abs(st.modifiedTime - Date.now() / 1000)).toBeLessThan(60);

  await expect(
    sb.filesystem.makeDirectory("/workspace/dir", { createParents: false }),
  ).rejects.toBeInstanceOf(SandboxFilesystemPathAlreadyExistsError);
  await expect(
    sb.filesystem.makeDirectory("/workspace/none/x", { createParents: false }),
  ).rejects.toBeInstanceOf(SandboxFilesystemNotFoundError);
  await expect(sb.filesystem.remove("/workspace/dir")).rejects.toBeInstanceOf(
    SandboxFilesystemDirectoryNotEmptyError,
  );
  await sb.filesystem.remove("/workspace/dir/file.txt");
  await sb.filesystem.remove("/workspace/dir", { recursive: true });
  await expect(sb.filesystem.stat("/workspace/dir")).rejects.toBeInstanceOf(SandboxFilesystemNotFoundError);
});

test("typed errors: is a directory, not a directory, read-only host view", async () => {
  await expect(sb.filesystem.readText("/workspace")).rejects.toBeInstanceOf(
    SandboxFilesystemIsADirectoryError,
  );
  await expect(sb.filesystem.listFiles("/workspace/up.txt")).rejects.toBeInstanceOf(
    SandboxFilesystemNotADirectoryError,
  );
  await expect(sb.filesystem.writeText("nope", "/usr/modal-emulator-test.txt")).rejects.toBeInstanceOf(
    SandboxFilesystemPermissionError,
  );
  await expect(sb.filesystem.remove("/nonexistent-dir-xyz")).rejects.toBeInstanceOf(
    SandboxFilesystemNotFoundError,
  );
  // The host view is readable.
  expect((await sb.filesystem.stat("/usr/bin")).type).toBe("directory");
});

test("watch reports changes until its timeout", async () => {
  await sb.filesystem.makeDirectory("/workspace/watched");
  const events: string[] = [];
  const watching = (async () => {
    for await (const event of sb.filesystem.watch("/workspace/watched", { timeoutMs: 2000 })) {
      events.push(`${event.eventType} ${event.paths.join(",")}`);
      if (events.length >= 1) break;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  await sb.filesystem.writeText("new", "/workspace/watched/new.txt");
  await watching;
  expect(events[0]).toMatch(/^(Create|Modify) \/workspace\/watched\/new\.txt$/);
});
