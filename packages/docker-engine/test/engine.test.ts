import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  Demuxer,
  DockerEngine,
  DockerEngineError,
  JsonLines,
  parseEngineAddress,
  resolveEngineEndpoint,
  tarArchive,
} from "../src/index.js";
import { engineForTests } from "../src/testing.js";

describe("engine addresses", () => {
  it("reads unix, path and tcp forms, and refuses the rest naming the option and the forms", () => {
    expect(parseEngineAddress("unix:///run/docker.sock")).toEqual({ socketPath: "/run/docker.sock" });
    expect(parseEngineAddress("/var/run/docker.sock")).toEqual({ socketPath: "/var/run/docker.sock" });
    expect(parseEngineAddress("tcp://127.0.0.1:2375")).toEqual({ host: "127.0.0.1", port: 2375 });
    for (const bad of ["unix://relative.sock", "https://x:1", "tcp://host", "docker.sock", "tcp://h:70000"]) {
      const err = (() => {
        try {
          parseEngineAddress(bad, "engine");
        } catch (e) {
          return e as DockerEngineError;
        }
      })();
      expect(err, bad).toBeInstanceOf(DockerEngineError);
      expect(err?.code).toBe("INVALID_ARGUMENT");
      expect(err?.message).toMatch(/^engine: .*unix:\/\/\//);
    }
  });

  it("takes DOCKER_HOST when no address is given, and says what it tried when nothing exists", () => {
    expect(resolveEngineEndpoint(undefined, { DOCKER_HOST: "unix:///x/y.sock" })).toEqual({
      socketPath: "/x/y.sock",
    });
    const dir = mkdtempSync(join(tmpdir(), "ar-engine-"));
    try {
      resolveEngineEndpoint(undefined, { XDG_RUNTIME_DIR: dir });
      // A machine with Docker or rootful Podman installed has one of the default sockets: nothing to check.
    } catch (err) {
      expect((err as DockerEngineError).code).toBe("UNAVAILABLE");
      expect((err as Error).message).toContain(`${dir}/podman/podman.sock`);
      expect((err as Error).message).toContain("podman system service");
    }
  });

  it("a socket nobody listens on is UNAVAILABLE naming the address", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-engine-"));
    const engine = new DockerEngine({ address: `unix://${dir}/none.sock` });
    await expect(engine.ping()).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: expect.stringContaining(`unix://${dir}/none.sock`),
    });
  });
});

describe("stream formats", () => {
  it("a tar archive lists and extracts with the system's tar", () => {
    const dir = mkdtempSync(join(tmpdir(), "ar-tar-"));
    const big = Buffer.alloc(1500, 7);
    writeFileSync(
      join(dir, "a.tar"),
      tarArchive([
        { name: "Dockerfile", content: "FROM scratch\n" },
        { name: "sub/big.bin", content: big, mode: 0o755 },
      ]),
    );
    expect(execFileSync("tar", ["-tvf", join(dir, "a.tar")], { encoding: "utf8" })).toMatch(
      /rwxr-xr-x.*1500.*sub\/big.bin/,
    );
    execFileSync("tar", ["-xf", join(dir, "a.tar"), "-C", dir]);
    expect(execFileSync("cat", [join(dir, "Dockerfile")], { encoding: "utf8" })).toBe("FROM scratch\n");
    expect(() => tarArchive([{ name: "../x", content: "" }])).toThrow(/without ".."/);
    expect(() => tarArchive([{ name: "/abs", content: "" }])).toThrow(RangeError);
  });

  it("the demuxer reassembles frames split at any byte", () => {
    const frame = (kind: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = kind;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    const all = Buffer.concat([frame(1, "hello "), frame(2, "oops"), frame(1, "world")]);
    for (let cut = 1; cut < all.length; cut++) {
      const got: string[] = [];
      const d = new Demuxer((kind, data) => got.push(`${kind}:${data}`));
      d.write(all.subarray(0, cut));
      d.write(all.subarray(cut));
      expect(got).toEqual(["stdout:hello ", "stderr:oops", "stdout:world"]);
      expect(d.pendingBytes).toBe(0);
    }
  });

  it("JSON lines survive split chunks and CRLF; a non-JSON line comes through as text", () => {
    const got: unknown[] = [];
    const j = new JsonLines((m) => got.push(m));
    j.write('{"stream":"a"}\r\n{"str');
    j.write('eam":"b"}\nplain text\n{"error":"x"}');
    j.end();
    expect(got).toEqual([{ stream: "a" }, { stream: "b" }, { stream: "plain text\n" }, { error: "x" }]);
  });
});

const found = await engineForTests();
const LABEL = "agent-runtime.test";
const run = `t${process.pid}-${Date.now()}`;

describe.skipIf(found.skip !== undefined)(
  `against a real engine${found.skip ? ` (skipped: ${found.skip})` : ""}`,
  () => {
    const engine = found.engine as DockerEngine;
    const tags: string[] = [];

    afterAll(async () => {
      for (const c of await engine.listContainers({ labels: { [LABEL]: run }, all: true }))
        await engine.removeContainer(c.Id);
      for (const tag of tags) await engine.removeImage(tag, { force: true });
    });

    it("answers ping and version", async () => {
      await engine.ping();
      const v = await engine.version();
      expect(typeof v.Version === "string" || Array.isArray(v.Components)).toBe(true);
    });

    it("builds a Dockerfile, tags it and reports its log; a failing step is FAILED_PRECONDITION with the log tail", async () => {
      const tag = `localhost/agent-runtime-test/engine:${run}`;
      tags.push(tag);
      const lines: string[] = [];
      const built = await engine.build({
        context: [
          {
            name: "Dockerfile",
            content: `FROM ${found.baseImage}\nCOPY hello.txt /hello.txt\nRUN echo "built-$(cat /hello.txt)"\n`,
          },
          { name: "hello.txt", content: "world" },
        ],
        tag,
        labels: { [LABEL]: run },
        onLog: (l) => lines.push(l),
      });
      expect(built.imageId).toMatch(/^(sha256:)?[0-9a-f]{12,}/);
      expect(built.log).toContain("built-world");
      expect(lines.some((l) => l.includes("built-world"))).toBe(true);
      const inspected = await engine.inspectImage(tag);
      expect(inspected?.Config?.Labels?.[LABEL]).toBe(run);

      const failing = engine.build({
        context: [
          {
            name: "Dockerfile",
            content: `FROM ${found.baseImage}\nRUN echo step-output-before-failure; exit 3\n`,
          },
        ],
        tag: `localhost/agent-runtime-test/engine:${run}-bad`,
      });
      await expect(failing).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
      await expect(failing).rejects.toThrow(/step-output-before-failure/);
      expect(await engine.inspectImage(`localhost/agent-runtime-test/engine:${run}-bad`)).toBeUndefined();
    }, 120_000);

    it("a build past its deadline is TIMEOUT with the log so far, and tags nothing", async () => {
      const tag = `localhost/agent-runtime-test/engine:${run}-slow`;
      const slow = engine.build({
        context: [
          { name: "Dockerfile", content: `FROM ${found.baseImage}\nRUN echo before-the-wait && sleep 4\n` },
        ],
        tag,
        timeoutMs: 1500,
      });
      await expect(slow).rejects.toMatchObject({ code: "TIMEOUT" });
      await expect(slow).rejects.toThrow(/took longer than 1500 ms/);
      await new Promise((r) => setTimeout(r, 5000));
      expect(await engine.inspectImage(tag)).toBeUndefined();
    }, 60_000);

    it("runs a labelled container: inspect, list by label, logs, exec with stdin, remove", async () => {
      const id = await engine.createContainer(
        {
          Image: found.baseImage,
          Cmd: ["bash", "-c", "echo started; echo to-stderr >&2; exec sleep 300"],
          Labels: { [LABEL]: run, "agent-runtime.role": "probe" },
          HostConfig: { NetworkMode: "none" },
        },
        { name: `ar-engine-test-${run}` },
      );
      await engine.startContainer(id);
      const info = await engine.inspectContainer(id);
      expect(info?.State.Running).toBe(true);
      const listed = await engine.listContainers({ labels: { [LABEL]: run, "agent-runtime.role": "probe" } });
      expect(listed.map((c) => c.Id)).toEqual([id]);
      expect(await engine.listContainers({ labels: { [LABEL]: "someone-else" } })).toEqual([]);
      await expect.poll(() => engine.containerLogs(id)).toMatch(/started\n[\s\S]*to-stderr/);

      const execId = await engine.createExec(id, {
        Cmd: ["bash", "-c", 'read line; echo "got:$line"; echo err >&2; exit 4'],
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await engine.startExec(execId);
      const out: string[] = [];
      const demux = new Demuxer((kind, data) => out.push(`${kind}:${data}`));
      const ended = new Promise<void>((resolve) => {
        stream.output.on("data", (c: Buffer) => demux.write(c));
        stream.output.once("end", resolve);
        stream.output.once("close", resolve);
      });
      stream.input?.write("ping\n");
      await ended;
      expect(out.join("")).toContain("stdout:got:ping");
      expect(out.join("")).toContain("stderr:err");
      await expect.poll(async () => (await engine.inspectExec(execId)).ExitCode).toBe(4);

      await expect(
        engine.createContainer({ Image: found.baseImage, Cmd: ["true"] }, { name: `ar-engine-test-${run}` }),
      ).rejects.toMatchObject({
        code: "CONFLICT",
      });
      await engine.removeContainer(id);
      expect(await engine.inspectContainer(id)).toBeUndefined();
      await engine.removeContainer(id); // gone already: not an error
    }, 60_000);

    it("a missing image is NOT_FOUND with the engine's message", async () => {
      await expect(
        engine.createContainer({ Image: "localhost/agent-runtime-test/no-such-image:1" }),
      ).rejects.toMatchObject({
        code: "NOT_FOUND",
      });
    });
  },
);
