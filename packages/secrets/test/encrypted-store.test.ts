import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import type { Logger } from "@agent-runtime/runtime-core";
import { isRuntimeError } from "@agent-runtime/runtime-core";
import { afterAll, describe, expect, it } from "vitest";
import { decodeKey, EncryptedFileStore, generateKey, loadKey } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "secrets-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `store-${++n}.enc`);

async function caught(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("EncryptedFileStore", () => {
  const key = generateKey();
  const env = { AGENT_RUNTIME_SECRETS_KEY: key };

  it("round-trips names and values, encrypted, with mode 0600", async () => {
    const path = fresh();
    const store = new EncryptedFileStore({ path, env });
    expect(await store.list()).toEqual([]);
    expect(await store.exists()).toBe(false);
    await store.set("B_TOKEN", "value-b-🔑\nline two");
    await store.set("A_TOKEN", "value-a");
    expect(await store.list()).toEqual(["A_TOKEN", "B_TOKEN"]);
    expect(await store.get("B_TOKEN")).toBe("value-b-🔑\nline two");
    expect(await store.get("MISSING")).toBeUndefined();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const raw = readFileSync(path, "utf8");
    expect(raw).not.toContain("value-a");
    expect(raw).not.toContain("A_TOKEN");
    // A second instance (another process, later) reads the same file.
    expect(await new EncryptedFileStore({ path, env }).load()).toEqual({
      A_TOKEN: "value-a",
      B_TOKEN: "value-b-🔑\nline two",
    });
    expect(await store.delete("A_TOKEN")).toBe(true);
    expect(await store.delete("A_TOKEN")).toBe(false);
    expect(await store.list()).toEqual(["B_TOKEN"]);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("accepts hex keys and key files, and warns when a key file is readable by others", async () => {
    const hex = Buffer.from(key, "base64").toString("hex");
    const path = fresh();
    await new EncryptedFileStore({ path, env: { K: hex }, keyEnv: "K" }).set("X_NAME", "x-value");
    const keyFile = join(dir, "key.txt");
    writeFileSync(keyFile, `${key}\n`, { mode: 0o644 });
    chmodSync(keyFile, 0o644);
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
    expect(await new EncryptedFileStore({ path, keyFile, env: {}, logger }).get("X_NAME")).toBe("x-value");
    expect(warnings.join()).toContain("chmod 600");
    const raw = join(dir, "raw.key");
    writeFileSync(raw, Buffer.from(key, "base64"), { mode: 0o600 });
    expect(
      await new EncryptedFileStore({ path, env: { AGENT_RUNTIME_SECRETS_KEY_FILE: raw } }).get("X_NAME"),
    ).toBe("x-value");
  });

  it("fails clearly on a tampered file", async () => {
    const path = fresh();
    const store = new EncryptedFileStore({ path, env });
    await store.set("TOKEN", "tamper-me-please");
    const envelope = JSON.parse(readFileSync(path, "utf8")) as { data: string };
    const bytes = Buffer.from(envelope.data, "base64");
    bytes[0]! ^= 0x01;
    writeFileSync(path, JSON.stringify({ ...envelope, data: bytes.toString("base64") }));
    const err = await caught(new EncryptedFileStore({ path, env }).load());
    expect(isRuntimeError(err, "FAILED_PRECONDITION")).toBe(true);
    expect(err.message).toContain(path);
    expect(err.message).toContain("modified after it was written (tampered or corrupted)");
    expect(err.message).toContain("restore it from a backup");

    writeFileSync(path, "{ not json");
    const err2 = await caught(new EncryptedFileStore({ path, env }).list());
    expect(isRuntimeError(err2, "FAILED_PRECONDITION")).toBe(true);
    expect(err2.message).toContain("not a valid agent-runtime secrets file");
  });

  it("tells a wrong key apart from tampering", async () => {
    const path = fresh();
    await new EncryptedFileStore({ path, env }).set("TOKEN", "right-key-value");
    const err = await caught(
      new EncryptedFileStore({ path, env: { AGENT_RUNTIME_SECRETS_KEY: generateKey() } }).load(),
    );
    expect(isRuntimeError(err, "UNAUTHORIZED")).toBe(true);
    expect(err.message).toContain("different key");
    expect(err.message).not.toContain(key);
  });

  it("explains a missing or malformed key without echoing it", async () => {
    const path = fresh();
    const missing = await caught(new EncryptedFileStore({ path, env: {} }).set("A_B", "value"));
    expect(isRuntimeError(missing, "UNAUTHORIZED")).toBe(true);
    expect(missing.message).toContain("AGENT_RUNTIME_SECRETS_KEY is not set");
    expect(missing.message).toContain("agent-runtime-secrets keygen");
    const bad = await caught(loadKey({ env: { AGENT_RUNTIME_SECRETS_KEY: "too-short-key-material" } }));
    expect(isRuntimeError(bad, "INVALID_ARGUMENT")).toBe(true);
    expect(bad.message).not.toContain("too-short-key-material");
    expect(() => decodeKey("x".repeat(32), "f")).toThrow(/not 32 bytes/);
    const noFile = await caught(loadKey({ keyFile: join(dir, "absent.key") }));
    expect(isRuntimeError(noFile, "NOT_FOUND")).toBe(true);
  });

  it("rejects invalid names and reports a missing store on load", async () => {
    const store = new EncryptedFileStore({ path: fresh(), env });
    expect(isRuntimeError(await caught(store.set("1-bad", "v")), "INVALID_ARGUMENT")).toBe(true);
    const err = await caught(store.load());
    expect(isRuntimeError(err, "NOT_FOUND")).toBe(true);
    expect(err.message).toContain("agent-runtime-secrets set NAME");
  });

  it("never shows the key or values in JSON or inspect", async () => {
    const store = new EncryptedFileStore({ path: fresh(), env });
    await store.set("SHOWN", "never-shown-value");
    await store.list();
    for (const text of [JSON.stringify(store), inspect(store, { showHidden: true, depth: 5 })]) {
      expect(text).not.toContain("never-shown-value");
      expect(text).not.toContain(key);
    }
  });
});
