import { readFileSync, realpathSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, isRuntimeError } from "@agent-runtime/runtime-core";
import { type ModalEmulator, startModalEmulator } from "./emulator.js";
import type { EvictionStatus } from "./faults.js";
import type { ModalEmulatorOptions } from "./options.js";

/** Where the CLI reads and writes. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Fault commands, one per line (`evict <id>`, `cut <id> [ms]`, `fail <method> <status> [n]`, ...). */
  stdin?: NodeJS.ReadableStream;
}

/** A started CLI: the emulator, and how to stop it. */
export interface CliSession {
  emulator: ModalEmulator;
  /** Stops every sandbox and the servers (what Ctrl-C does). */
  stop(): Promise<void>;
}

/** The CLI's usage text. */
export const USAGE = `Usage: agent-runtime-modal-emulator [options]

Serves Modal's API on 127.0.0.1 for the modal SDK; sandboxes run as local processes (or, with --engine, as
containers). Prints the environment to
export, then runs until Ctrl-C (which stops every sandbox it started).

Options:
  --port N                  control-plane port (default: a free port)
  --router-port N           command-router port (default: a free port)
  --host ADDR               bind address (default: 127.0.0.1)
  --token-id ID             token id clients must send (default: random)
  --token-secret SECRET     token secret clients must send (default: random)
  --secret NAME:K=V[,K=V]   a named secret for secrets.fromName (repeatable; prefer --secrets-file)
  --secrets-file FILE       JSON {"name": {"KEY": "value"}} of named secrets
  --isolation MODE          auto | bwrap | none (default: auto)
  --engine docker[=ADDR]    run sandboxes as containers and build images for real in a container engine
                            (ADDR: unix:///path/to/docker.sock or tcp://host:port; default: DOCKER_HOST or
                            the usual sockets)
  --engine-base-map FROM=TO with --engine: build on TO where an image says FROM FROM (repeatable), e.g.
                            node:24-bookworm-slim=localhost/agent-runtime/debian-trixie-min
  --state-dir DIR           where sandbox roots live (default: a temp dir)
  --keep-state              keep the state dir on exit
  --strict                  behave as the real Modal service (the default unless
                            MODAL_EMULATOR_STRICT=0; see the README's "Strict mode")
  --lenient                 implement every field on both sandbox APIs
  --fail METHOD:STATUS[:N]  fail the next N calls of a gRPC method (repeatable), e.g. SandboxCreateV2:UNAVAILABLE:2
  --delay-creates MS        delay every sandbox create
  --fail-image-builds N     fail the next N image builds
  --json                    print the environment as one JSON line instead of export lines
  -h, --help                show this help

Commands on stdin while running:
  list | evict <sandbox-id> [INTERNAL_FAILURE|MEMORY_MANAGER_EVICTION|TERMINATED] | cut <sandbox-id> [refuse-ms]
  fail <method> <status> [n] | throttle <method> [n] [retry-after-secs] | delay <ms> | help
`;

interface ParsedArgs {
  options: ModalEmulatorOptions;
  fails: { method: string; status: string; n: number }[];
  delayCreatesMs?: number;
  failImageBuilds?: number;
  json: boolean;
  help: boolean;
}

function intArg(flag: string, value: string | undefined, min = 0): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min) {
    throw new InvalidArgumentError(`${flag} needs an integer >= ${min}, got ${JSON.stringify(value ?? "")}`);
  }
  return n;
}

/** Parses CLI arguments (throws InvalidArgumentError naming the bad flag). */
export function parseCliArgs(argv: readonly string[]): ParsedArgs {
  const options: ModalEmulatorOptions = {};
  const secrets: Record<string, Record<string, string>> = {};
  const baseImageMap: Record<string, string> = {};
  const parsed: ParsedArgs = { options, fails: [], json: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=")
        ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
        : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new InvalidArgumentError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "-h":
      case "--help":
        parsed.help = true;
        break;
      case "--port":
        options.port = intArg(flag, value());
        break;
      case "--router-port":
        options.routerPort = intArg(flag, value());
        break;
      case "--host":
        options.host = value();
        break;
      case "--token-id":
        options.tokenId = value();
        break;
      case "--token-secret":
        options.tokenSecret = value();
        break;
      case "--secret": {
        const v = value();
        const colon = v.indexOf(":");
        if (colon <= 0)
          throw new InvalidArgumentError(
            `--secret expects NAME:KEY=VALUE[,KEY=VALUE], got ${v.split(":")[0]}`,
          );
        const name = v.slice(0, colon);
        const values: Record<string, string> = secrets[name] ?? {};
        for (const pair of v.slice(colon + 1).split(",")) {
          const eq = pair.indexOf("=");
          if (eq <= 0) throw new InvalidArgumentError(`--secret ${name}: expected KEY=VALUE pairs`);
          values[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        secrets[name] = values;
        break;
      }
      case "--secrets-file": {
        const file = value();
        let data: unknown;
        try {
          data = JSON.parse(readFileSync(file, "utf8"));
        } catch (err) {
          throw new InvalidArgumentError(`--secrets-file ${file}: ${(err as Error).message}`);
        }
        if (typeof data !== "object" || data === null || Array.isArray(data)) {
          throw new InvalidArgumentError(`--secrets-file ${file}: expected {"name": {"KEY": "value"}}`);
        }
        Object.assign(secrets, data);
        break;
      }
      case "--isolation": {
        const v = value();
        if (v !== "auto" && v !== "bwrap" && v !== "none") {
          throw new InvalidArgumentError(`--isolation must be auto, bwrap or none, got ${JSON.stringify(v)}`);
        }
        options.isolation = v;
        break;
      }
      case "--engine": {
        const v = value();
        const eq = v.indexOf("=");
        const kind = eq < 0 ? v : v.slice(0, eq);
        if (kind !== "docker")
          throw new InvalidArgumentError(
            `--engine must be docker or docker=ADDRESS, got ${JSON.stringify(v)}`,
          );
        const address = eq < 0 ? undefined : v.slice(eq + 1);
        options.sandboxEngine = {
          ...options.sandboxEngine,
          kind: "docker",
          ...(address ? { address } : {}),
        };
        break;
      }
      case "--engine-base-map": {
        const v = value();
        const eq = v.indexOf("=");
        if (eq <= 0 || eq === v.length - 1)
          throw new InvalidArgumentError(`--engine-base-map expects FROM=TO, got ${JSON.stringify(v)}`);
        baseImageMap[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case "--state-dir":
        options.stateDir = value();
        break;
      case "--keep-state":
        options.keepStateDir = true;
        break;
      case "--strict":
      case "--lenient":
        if (options.strict !== undefined && options.strict !== (flag === "--strict"))
          throw new InvalidArgumentError("--strict and --lenient contradict each other: pass one");
        options.strict = flag === "--strict";
        break;
      case "--fail": {
        const [method, status, n] = value().split(":");
        if (!method || !status) throw new InvalidArgumentError("--fail expects METHOD:STATUS[:N]");
        parsed.fails.push({ method, status, n: n === undefined ? 1 : intArg("--fail N", n, 1) });
        break;
      }
      case "--delay-creates":
        parsed.delayCreatesMs = intArg(flag, value());
        break;
      case "--fail-image-builds":
        parsed.failImageBuilds = intArg(flag, value(), 1);
        break;
      case "--json":
        parsed.json = true;
        break;
      default:
        throw new InvalidArgumentError(`unknown argument ${JSON.stringify(arg)} (see --help)`);
    }
  }
  if (Object.keys(secrets).length > 0) options.secrets = secrets;
  if (Object.keys(baseImageMap).length > 0) {
    if (!options.sandboxEngine) throw new InvalidArgumentError("--engine-base-map needs --engine docker");
    options.sandboxEngine.baseImageMap = baseImageMap;
  }
  return parsed;
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function runCommand(emulator: ModalEmulator, line: string, io: CliIo): void {
  const [cmd, ...args] = line.trim().split(/\s+/);
  const say = (text: string): void => {
    io.stdout.write(`${text}\n`);
  };
  try {
    switch (cmd) {
      case undefined:
      case "":
        return;
      case "list":
        for (const sb of emulator.listSandboxes()) {
          say(
            `${sb.sandboxId} ${sb.running ? "running" : `finished ${sb.result?.status} ${sb.result?.exitCode}`} ${sb.command.join(" ")}`,
          );
        }
        return;
      case "evict":
        say(
          emulator.faults.evict(args[0] ?? "", (args[1] as EvictionStatus | undefined) ?? "INTERNAL_FAILURE")
            ? "evicted"
            : "no such running sandbox",
        );
        return;
      case "cut":
        say(
          emulator.faults.cutTunnels(args[0] ?? "", Number(args[1] ?? 0))
            ? "tunnels cut"
            : "no such running sandbox",
        );
        return;
      case "fail":
        emulator.faults.failNext(args[0] ?? "", args[1] ?? "", Number(args[2] ?? 1));
        say("ok");
        return;
      case "throttle":
        emulator.faults.throttle(args[0] ?? "", Number(args[1] ?? 1), Number(args[2] ?? 1));
        say("ok");
        return;
      case "delay":
        emulator.faults.delayCreates(Number(args[0] ?? 0));
        say("ok");
        return;
      case "help":
        say(USAGE.slice(USAGE.indexOf("Commands on stdin")));
        return;
      default:
        say(`unknown command ${JSON.stringify(cmd)} (try help)`);
    }
  } catch (err) {
    io.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

/**
 * Runs the CLI: parses `argv`, starts the emulator, prints the environment to export. Returns `undefined`
 * (after printing usage or an error) when nothing was started; `exitCode` says how it ended.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
): Promise<{ session?: CliSession; exitCode: number }> {
  let parsed: ParsedArgs;
  try {
    parsed = parseCliArgs(argv);
  } catch (err) {
    io.stderr.write(`agent-runtime-modal-emulator: ${(err as Error).message}\n`);
    return { exitCode: 2 };
  }
  if (parsed.help) {
    io.stdout.write(USAGE);
    return { exitCode: 0 };
  }
  let emulator: ModalEmulator;
  try {
    emulator = await startModalEmulator(parsed.options);
  } catch (err) {
    io.stderr.write(`agent-runtime-modal-emulator: ${(err as Error).message}\n`);
    return { exitCode: isRuntimeError(err, "INVALID_ARGUMENT") ? 2 : 1 };
  }
  for (const f of parsed.fails) emulator.faults.failNext(f.method, f.status, f.n);
  if (parsed.delayCreatesMs !== undefined) emulator.faults.delayCreates(parsed.delayCreatesMs);
  if (parsed.failImageBuilds !== undefined) emulator.faults.failImageBuilds(parsed.failImageBuilds);

  const env = emulator.env();
  if (parsed.json) {
    io.stdout.write(
      `${JSON.stringify({
        env,
        routerUrl: emulator.routerUrl,
        isolation: emulator.isolation,
        ...(emulator.sandboxEngine ? { sandboxEngine: emulator.sandboxEngine } : {}),
        strict: emulator.strict,
      })}\n`,
    );
  } else {
    const where = emulator.sandboxEngine
      ? `sandboxes in docker at ${emulator.sandboxEngine.address}`
      : `isolation=${emulator.isolation}`;
    io.stdout.write(
      `# modal-emulator: ${where}, ${emulator.strict ? "strict" : "lenient"}; Ctrl-C stops it and every sandbox.\n`,
    );
    for (const [k, v] of Object.entries(env)) io.stdout.write(`export ${k}=${shellQuote(v)}\n`);
  }

  const rl = io.stdin ? createInterface({ input: io.stdin, terminal: false }) : undefined;
  rl?.on("line", (line) => runCommand(emulator, line, io));
  const stop = async (): Promise<void> => {
    rl?.close();
    await emulator.close();
  };
  return { session: { emulator, stop }, exitCode: 0 };
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  void runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
  }).then(({ session, exitCode }) => {
    if (!session) {
      process.exitCode = exitCode;
      return;
    }
    let stopping = false;
    const onSignal = (): void => {
      if (stopping) return;
      stopping = true;
      void session.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
