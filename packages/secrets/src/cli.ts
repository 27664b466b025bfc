import { realpathSync } from "node:fs";
import { open } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Logger } from "@agent-runtime/runtime-core";
import { isRuntimeError, RuntimeError } from "@agent-runtime/runtime-core";
import { toSecretsError } from "./errors.js";
import { defaultStorePath, hostPath, STORE_FILE_ENV } from "./paths.js";
import { EncryptedFileStore } from "./store/encrypted-file-store.js";
import { DEFAULT_KEY_ENV, DEFAULT_KEY_FILE_ENV, decodeKey, generateKey } from "./store/key.js";

const PROG = "agent-runtime-secrets";

const USAGE = `Usage: ${PROG} <command> [options]

Commands:
  set <NAME>          Store a secret. The value is read from stdin when piped (one trailing newline
                      removed; --keep-newline keeps it) or from a hidden prompt. Never from the command line.
  get <NAME>          Say whether NAME is set; with --reveal, print its value.
  list                Print the names in the store, one per line (never values).
  rm <NAME>           Remove a secret.
  keygen              Print a new random key (base64), or write it to --key-file (mode 0600).

Options:
  --store <path>      Store file (default: $${STORE_FILE_ENV}, else ~/.config/agent-runtime/secrets.enc)
  --key-file <path>   Key file (default: the key in $${DEFAULT_KEY_ENV}, else the file in $${DEFAULT_KEY_FILE_ENV})
  --reveal            get: print the value
  --keep-newline      set: keep a trailing newline read from stdin
  -h, --help          Show this help

Exit codes: 0 ok, 1 error, 2 usage error.`;

/** Streams and environment the CLI runs with (a real process passes its own). */
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
}

class UsageError extends Error {}

/**
 * Runs `agent-runtime-secrets` with `argv` (without node and script) and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2));
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${PROG}: ${err.message}\nRun \`${PROG} --help\` for usage.\n`);
      return 2;
    }
    const runtimeError = isRuntimeError(err) ? err : toSecretsError(err, "complete the command");
    io.stderr.write(`${PROG}: ${runtimeError.message}\n`);
    return 1;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === "help") {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) throw new UsageError("missing command (set, get, list, rm, keygen).");

  if (command === "keygen") {
    expectArgs(command, rest, 0);
    return keygen(values["key-file"], io);
  }
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (m) => io.stderr.write(`${PROG}: warning: ${m}\n`),
    error: (m) => io.stderr.write(`${PROG}: ${m}\n`),
  };
  const store = new EncryptedFileStore({
    path: values.store ?? defaultStorePath(io.env),
    keyFile: values["key-file"],
    env: io.env,
    logger,
  });

  switch (command) {
    case "set": {
      if (rest.length > 1) {
        throw new UsageError(
          "refusing to read a secret value from the command line: arguments are visible to every user in `ps` " +
            `and are kept in shell history. Pipe it in (\`printf %s "$VALUE" | ${PROG} set ${rest[0]}\`) or run ` +
            `\`${PROG} set ${rest[0]}\` and type it at the prompt.`,
        );
      }
      const name = expectArgs(command, rest, 1);
      let value = await readValue(name, io);
      if (!values["keep-newline"]) value = value.replace(/\r?\n$/, "");
      if (value === "") throw new UsageError(`the value for ${name} is empty; nothing was stored.`);
      const existed = (await store.get(name)) !== undefined;
      await store.set(name, value);
      io.stderr.write(`${existed ? "Updated" : "Stored"} ${name} in ${store.path}.\n`);
      return 0;
    }
    case "get": {
      const name = expectArgs(command, rest, 1);
      const value = await store.get(name);
      if (value === undefined)
        throw new RuntimeError("NOT_FOUND", `${name} is not in the store ${store.path}.`);
      if (!values.reveal) {
        io.stderr.write(`${name} is set (value hidden; pass --reveal to print it).\n`);
        return 0;
      }
      io.stdout.write(io.stdout.isTTY ? `${value}\n` : value);
      return 0;
    }
    case "list": {
      expectArgs(command, rest, 0);
      const names = await store.list();
      if (names.length) io.stdout.write(`${names.join("\n")}\n`);
      else io.stderr.write(`The store ${store.path} is empty or does not exist.\n`);
      return 0;
    }
    case "rm": {
      const name = expectArgs(command, rest, 1);
      if (!(await store.delete(name)))
        throw new RuntimeError("NOT_FOUND", `${name} is not in the store ${store.path}.`);
      io.stderr.write(`Removed ${name} from ${store.path}.\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}" (expected set, get, list, rm or keygen).`);
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      store: { type: "string" },
      "key-file": { type: "string" },
      reveal: { type: "boolean" },
      "keep-newline": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

function expectArgs(command: string, rest: string[], count: 0): undefined;
function expectArgs(command: string, rest: string[], count: 1): string;
function expectArgs(command: string, rest: string[], count: 0 | 1): string | undefined {
  if (rest.length !== count) {
    throw new UsageError(
      count === 0
        ? `${command} takes no arguments.`
        : `${command} takes exactly one argument: the secret's NAME.`,
    );
  }
  return rest[0];
}

async function keygen(keyFile: string | undefined, io: CliIo): Promise<number> {
  const key = generateKey();
  if (keyFile === undefined) {
    io.stdout.write(`${key}\n`);
    return 0;
  }
  const path = hostPath(keyFile);
  try {
    const handle = await open(path, "wx", 0o600);
    await handle.writeFile(`${key}\n`);
    await handle.sync();
    await handle.close();
  } catch (err) {
    if ((err as { code?: string }).code === "EEXIST") {
      throw new RuntimeError("ALREADY_EXISTS", `${path} already exists; refusing to overwrite a key.`);
    }
    throw toSecretsError(err, `write the key file ${path}`);
  }
  io.stderr.write(`Wrote a new key to ${path} (fingerprint ${decodeKey(key, path).fingerprint}).\n`);
  return 0;
}

async function readValue(name: string, io: CliIo): Promise<string> {
  if (io.stdin.isTTY && typeof io.stdin.setRawMode === "function") {
    return promptHidden(`Value for ${name} (input hidden): `, io);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function promptHidden(question: string, io: CliIo): Promise<string> {
  const input = io.stdin;
  // Echo goes off before the prompt shows, so nothing typed after it is ever echoed.
  input.setRawMode?.(true);
  io.stderr.write(question);
  input.setEncoding("utf8");
  input.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    const finish = (): void => {
      input.setRawMode?.(false);
      input.pause();
      input.off("data", onData);
      io.stderr.write("\n");
    };
    const onData = (chunk: string | Buffer): void => {
      for (const ch of String(chunk)) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") {
          finish();
          resolve(value);
          return;
        }
        if (ch === "\u0003") {
          finish();
          reject(new RuntimeError("CANCELLED", "Cancelled; nothing was stored."));
          return;
        }
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on("data", onData);
  });
}

function processIo(): CliIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** True when this file is the program node was started with (not when it is imported). */
function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  // The CJS build has `__filename`; the ESM build has `import.meta.url` (empty in CJS).
  const self = typeof __filename === "string" ? __filename : fileURLToPath(import.meta.url);
  try {
    return realpathSync(script) === realpathSync(self);
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${PROG}: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
