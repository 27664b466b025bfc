import { startModalEmulator } from "@agent-runtime/modal-emulator";
import { type Redactor, RuntimeStatus, type StatusEvent, silentLogger } from "@agent-runtime/runtime-core";
import { describe, expect, it } from "vitest";
import { type ModalRuntimeOptions, type ModalRuntimeProvider, modalRuntime } from "../src/index.js";
import { emulatorOptions, errorOf, useEmulator } from "./helpers.js";

// What a failed start tells the user, through the real modal@0.11.1 SDK against modal-emulator.

const h = useEmulator();

const SECRET = "hunter2-very-secret-value";

/** The host's redactor, as any secrets plugin would give it: it knows SECRET. */
const redactor: Redactor = {
  isEmpty: false,
  redact: (text) => text.replaceAll(SECRET, "[redacted]"),
  redactDeep: <T>(value: T): T => JSON.parse(JSON.stringify(value).replaceAll(SECRET, "[redacted]")) as T,
};

const provider = (extra: ModalRuntimeOptions): ModalRuntimeProvider => h.provider(extra, { redactor });

/** A prebuilt image whose server command exists only in the image (not on this machine's PATH). */
const CUSTOM_IMAGE: ModalRuntimeOptions["image"] = {
  base: { kind: "registry", image: "ghcr.io/acme/agent-image:1.2" },
  server: {
    kind: "agent-runtime",
    install: { strategy: "preinstalled", command: "acme-agent-server" },
  },
};

const running = (appName: string) =>
  h.emulator.listSandboxes().filter((s) => s.appName === appName && s.running);

describe("a failed start shows the sandbox's own output", () => {
  it("a start command that fails: its stderr (redacted) in the message, details.output and the ERROR event", async () => {
    const script = [
      "console.log('starting the agent server');",
      `console.error('fatal: cannot read /etc/agent/config.toml (password ${SECRET})');`,
      "console.error('    at loadConfig (server.js:12:7)');",
      // Exits after Modal has scheduled the sandbox: one that exits before its V1 create returns fails the create
      // itself (FAILED_PRECONDITION, "ended before Modal scheduled it"), a race a loaded machine used to win.
      "setTimeout(() => process.exit(1), 1500);",
    ].join("\n");
    const p = provider({ serverCommand: [process.execPath, "-e", script] });
    const runtime = await p.create({ sessionId: "bad-start" });
    h.track(runtime);
    const events: StatusEvent[] = [];
    runtime.onStatus((e) => events.push(e));

    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("DISCONNECTED");
    expect(err.message).toContain(
      "The sandbox stopped before its server was ready: its start command exited with code 1 (or Modal evicted the sandbox)",
    );
    expect(err.message).toMatch(/Last output of sandbox sb-\S+ \(stdout and stderr, last 3 lines\):/);
    expect(err.message).toContain("  | fatal: cannot read /etc/agent/config.toml (password [redacted])");
    expect(err.details?.output).toEqual([
      "starting the agent server",
      expect.stringMatching(/^fatal: cannot read \/etc\/agent\/config\.toml \(password \[redacted\]\)$/),
      "    at loadConfig (server.js:12:7)",
    ]);
    expect(err.details?.sandboxId).toMatch(/^sb-/);
    expect(JSON.stringify(err.toJSON())).not.toContain(SECRET);
    expect(err.message).not.toContain(SECRET);

    const failed = events.find((e) => e.status === RuntimeStatus.ERROR);
    expect(failed?.message).toContain("fatal: cannot read /etc/agent/config.toml");
    expect(failed?.message).not.toContain(SECRET);
    expect(running(p.options.appName)).toEqual([]);
  });

  it("a start command that exits before Modal schedules the sandbox (V1 create fails): its output is read by id", async () => {
    // Modal answers the SDK's scheduling poll with "unavailable" a few times; the command exits meanwhile, so the
    // create itself fails ("has already finished") and no Sandbox object exists to read from.
    h.emulator.faults.failNext("SandboxGetTaskId", "UNAVAILABLE", 4);
    const script = `console.error('fatal: no such flag --bogus (token ${SECRET})'); process.exit(3);`;
    const p = provider({ serverCommand: [process.execPath, "-e", script] });
    const runtime = await p.create({ sessionId: "exits-at-once" });
    h.track(runtime);
    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("FAILED_PRECONDITION");
    expect(err.message).toMatch(/sb-\S+ has already finished \(the sandbox ended before Modal scheduled it/);
    expect(err.message).toContain("  | fatal: no such flag --bogus (token [redacted])");
    expect(err.details?.output).toEqual(["fatal: no such flag --bogus (token [redacted])"]);
    expect(err.details?.sandboxId).toMatch(/^sb-/);
    expect(JSON.stringify(err.toJSON())).not.toContain(SECRET);
    expect(running(p.options.appName)).toEqual([]);
  });

  it("a server that never gets ready (TIMEOUT) still shows what it printed", async () => {
    const p = provider({
      serverCommand: [
        process.execPath,
        "-e",
        "console.error('listening on the wrong port 1234'); setInterval(() => {}, 1000)",
      ],
      startupTimeoutMs: 2500,
    });
    const runtime = await p.create({ sessionId: "hangs" });
    h.track(runtime);
    const err = await errorOf(runtime.connect());
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toContain("  | listening on the wrong port 1234");
    expect(err.details?.output).toEqual(["listening on the wrong port 1234"]);
  });

  it("a custom image against modal-emulator without serverCommand says what to set", async () => {
    const p = provider({
      image: CUSTOM_IMAGE,
      serverCommand: undefined,
    });
    const runtime = await p.create({ sessionId: "emulated-custom-image" });
    h.track(runtime);
    const err = await errorOf(runtime.connect());
    expect(err.message).toContain("is a loopback address (modal-emulator)");
    expect(err.message).toContain("set the modal runtime option serverCommand to [");
    // On V1 a command that exits before Modal schedules the sandbox fails the create itself (the SDK's
    // ConflictError: nothing to read output from); a later exit is a disconnect that shows the output.
    if (err.code === "DISCONNECTED") expect(err.details?.output).toBeInstanceOf(Array);
    else expect(err.code).toBe("FAILED_PRECONDITION");
    expect(running(p.options.appName)).toEqual([]);
  });

  it("the same on an emulator without isolation, where the command cannot even be spawned (ENOENT)", async () => {
    // Isolation "none" (a machine without bubblewrap): the spawn fails at once, while the tunnels are still
    // opening. That used to leave SandboxCreate unanswered, so connect() waited for startupTimeoutMs and close()
    // behind it; both must now end promptly with the same hint.
    const plain = await startModalEmulator({ strict: true, isolation: "none" });
    try {
      const p = modalRuntime(
        emulatorOptions(plain, {
          image: CUSTOM_IMAGE,
          serverCommand: undefined,
        }),
        { logger: silentLogger },
      );
      const runtime = await p.create({ sessionId: "plain-custom-image" });
      try {
        const err = await errorOf(runtime.connect());
        expect(err.message).toContain("set the modal runtime option serverCommand to [");
        expect(plain.listSandboxes().filter((s) => s.running)).toEqual([]);
      } finally {
        await runtime.close();
        await p.close();
      }
    } finally {
      await plain.close();
    }
  });

  it("the default image against an emulator started elsewhere works without serverCommand", async () => {
    const p = provider({ image: undefined, serverCommand: undefined });
    expect(p.options.serverCommand?.[0]).toBe(process.execPath);
    const runtime = await p.create({ sessionId: "external-emulator" });
    h.track(runtime);
    await runtime.connect();
    const obs = await runtime.runCommand("echo ready-on-the-emulator");
    expect(obs.content).toContain("ready-on-the-emulator");
  });
});

describe("half-set Modal tokens name the missing variable", () => {
  const withEnv = (vars: Record<string, string>, fn: () => void) => {
    const saved = { ...process.env };
    Object.assign(process.env, vars);
    try {
      fn();
    } finally {
      for (const key of Object.keys(vars)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  };
  const creationError = (): Error & { code?: string } => {
    try {
      modalRuntime({});
    } catch (err) {
      return err as Error & { code?: string };
    }
    throw new Error("modalRuntime({}) did not throw");
  };

  it.each([
    { set: "MODAL_TOKEN_ID", value: "ak-AbCdEfGh12345678", missing: "MODAL_TOKEN_SECRET" },
    { set: "MODAL_TOKEN_SECRET", value: "as-ZyXwVuTs12345678", missing: "MODAL_TOKEN_ID" },
  ])("only $set set: $missing is missing", ({ set, value, missing }) => {
    withEnv({ [set]: value }, () => {
      const err = creationError();
      expect(err.code).toBe("UNAUTHORIZED");
      expect(err.message).toMatch(
        new RegExp(`^Modal credentials are incomplete: ${missing} is missing \\(${set} is set\\)`),
      );
      // The value that is set never shows, not even its tail.
      expect(err.message).not.toContain(value.slice(3));
    });
  });

  it("neither set: No Modal credentials found", () => {
    expect(creationError().message).toMatch(
      /^No Modal credentials found: set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET/,
    );
  });
});
