import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type Runtime, readZip } from "@agent-runtime/runtime-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localRuntime } from "../src/index.js";

const SIZE_MIB = 200;
const BOUND_MIB = 64;

/** Runs `fn` while sampling this process's RSS every 5 ms; returns the peak growth over the start, in MiB. */
async function peakRssGrowthMiB(fn: () => Promise<unknown>): Promise<number> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return (peak - base) / 1024 / 1024;
}

/** A sink that counts and drops what it gets. */
function counter(): Writable & { bytes: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      sink.bytes += chunk.length;
      callback();
    },
  }) as Writable & { bytes: number };
  sink.bytes = 0;
  return sink;
}

describe("downloadTo", () => {
  let runtime: Runtime;
  let hostDir: string;
  const figures: Record<string, number> = {};

  beforeAll(async () => {
    hostDir = await mkdtemp(join(tmpdir(), "ar-download-"));
    runtime = await localRuntime({ isolation: "none" }).create({ sessionId: `download-${process.pid}` });
    await runtime.connect();
    // A .gz name is stored in the zip, not deflated: the archive carries the whole size as is.
    const obs = await runtime.runCommand(
      `mkdir -p /tmp/ar-dl-${process.pid} && cd /tmp/ar-dl-${process.pid} && truncate -s ${SIZE_MIB}M big.gz && truncate -s 64M warm.gz && printf small > small.txt`,
    );
    expect(obs.content).not.toContain("No such");
  }, 60_000);

  afterAll(async () => {
    console.log(`download of a ${SIZE_MIB} MiB file, peak RSS growth (MiB):`, figures);
    await runtime?.runCommand(`rm -rf /tmp/ar-dl-${process.pid}`).catch(() => undefined);
    await runtime?.close();
    if (hostDir) await rm(hostDir, { recursive: true, force: true });
  });

  it("writes the same zip as download() to a path, atomically", async () => {
    const path = join(hostDir, "small.zip");
    const { bytes } = await runtime.downloadTo(`/tmp/ar-dl-${process.pid}/small.txt`, path);
    const onDisk = await readFile(path);
    expect(onDisk.length).toBe(bytes);
    expect(
      Buffer.compare(onDisk, Buffer.from(await runtime.download(`/tmp/ar-dl-${process.pid}/small.txt`))),
    ).toBe(0);
    expect(readZip(onDisk).map((e) => [e.path, Buffer.from(e.data).toString()])).toEqual([
      ["small.txt", "small"],
    ]);
  });

  it("a missing sandbox path is NOT_FOUND and leaves no file on the host", async () => {
    const path = join(hostDir, "missing.zip");
    await expect(runtime.downloadTo("/no/such/path", path)).rejects.toMatchObject({ code: "NOT_FOUND" });
    const sink = counter();
    await expect(runtime.downloadTo("/no/such/path", sink)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(sink.destroyed).toBe(true);
    await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
    expect((await import("node:fs")).readdirSync(hostDir).filter((n) => n.includes("missing"))).toEqual([]);
  });

  it(`streams a ${SIZE_MIB} MiB file to a stream and to a path with RSS growth under ${BOUND_MIB} MiB (download() buffers it)`, async () => {
    // The first large transfer of a process grows V8's young generation to its working size once (about
    // 40 MiB, whatever the file's size): warm up, so the figures below show what one download costs.
    figures.warmUp = await peakRssGrowthMiB(() =>
      runtime.downloadTo(`/tmp/ar-dl-${process.pid}/warm.gz`, counter()),
    );
    const sink = counter();
    figures.downloadToStream = await peakRssGrowthMiB(() =>
      runtime.downloadTo(`/tmp/ar-dl-${process.pid}/big.gz`, sink),
    );
    expect(sink.bytes).toBeGreaterThan(SIZE_MIB * 1024 * 1024);
    const path = join(hostDir, "big.zip");
    figures.downloadToPath = await peakRssGrowthMiB(() =>
      runtime.downloadTo(`/tmp/ar-dl-${process.pid}/big.gz`, path),
    );
    expect((await stat(path)).size).toBe(sink.bytes);
    await rm(path);
    // The same measurement sees the buffering download(): it is not blind.
    figures.download = await peakRssGrowthMiB(() => runtime.download(`/tmp/ar-dl-${process.pid}/big.gz`));
    expect(figures.download).toBeGreaterThan(SIZE_MIB);
    expect(figures.downloadToStream).toBeLessThan(BOUND_MIB);
    expect(figures.downloadToPath).toBeLessThan(BOUND_MIB);
  }, 120_000);
});
