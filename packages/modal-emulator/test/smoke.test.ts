import { afterAll, beforeAll, expect, test } from "vitest";
import { type ModalEmulator, startModalEmulator } from "../src/index.js";
import { clientFor } from "./helpers.js";

let emu: ModalEmulator;
beforeAll(async () => {
  emu = await startModalEmulator();
});
afterAll(async () => {
  await emu?.close();
});

test("smoke v2", async () => {
  const t0 = Date.now();
  const client = clientFor(emu);
  const app = await client.apps.fromName("smoke", { createIfMissing: true });
  const image = client.images.fromRegistry("alpine:3.21").dockerfileCommands(["RUN echo hi"]);
  const sb = await client.sandboxes.create(app, image, { env: { FOO: "bar" } });
  console.log("created", sb.sandboxId, Date.now() - t0, emu.isolation);
  const p = await sb.exec(["sh", "-c", "echo $FOO; pwd; echo err >&2; exit 3"]);
  console.log(await p.stdout.readText(), await p.stderr.readText(), await p.wait(), Date.now() - t0);
  await sb.filesystem.writeText("hello", "/workspace/a.txt");
  console.log(await sb.filesystem.readText("/workspace/a.txt"));
  console.log(await sb.filesystem.listFiles("/workspace"));
  await sb.terminate();
  expect(await sb.wait()).toBe(137);
  console.log("done", Date.now() - t0);
});
