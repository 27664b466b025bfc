// Longer than 400 lines on purpose: the one ImageSpec schema with each field's documentation and limits;
// every refinement sits next to the field it checks, so a reader sees a field's whole contract in one place.
import { z } from "zod";
import { stableStringify } from "./canonical-json.js";
import { dockerfileBaseProblems } from "./dockerfile-base.js";
import { parseOrThrow } from "./errors.js";

/**
 * The longest text one rendered Dockerfile line may hold. Docker's Dockerfile parser reads lines with a
 * 64 KiB scanner buffer ("dockerfile line greater than max allowed size"), so values are capped below it.
 */
export const MAX_LINE_CHARS = 60_000;

const CONTROL = /[\n\r\0]/;
const oneLine = (what: string) =>
  z
    .string()
    .max(MAX_LINE_CHARS, { error: `must be at most ${MAX_LINE_CHARS} characters (one Dockerfile line)` })
    .refine((s) => !CONTROL.test(s), {
      error: `must be one line without NUL: a Dockerfile ${what} cannot hold a newline`,
    });

/** An image reference such as `python:3.12-slim`, `ghcr.io/org/image:tag` or `image@sha256:...`. */
export const ImageRefSchema = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(255, { error: "must be at most 255 characters" })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, {
    error: "must be an image reference like python:3.12-slim (letters, digits and . _ / : @ - only)",
  });

const PackageSchema = z
  .string()
  .min(1, { error: "must not be empty" })
  .max(512, { error: "must be at most 512 characters" })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  .refine((s) => !/[\x00-\x1f\x7f]/.test(s), {
    error: "must not contain newlines or other control characters (give one package per entry)",
  })
  .refine((s) => !s.startsWith("-"), {
    error: "must not start with '-' (it would be read as an option); pass options through a run step",
  });

const packageList = z.array(PackageSchema).min(1, { error: "must list at least one package" });

const SAFE_PATH = /^\/[A-Za-z0-9._@%+=:,/-]*$/;
const safePath = z.string().max(4096, { error: "must be at most 4096 characters" }).regex(SAFE_PATH, {
  error: "must be an absolute path of letters, digits and . _ @ % + = : , / - (no spaces, quotes or $)",
});

const AbsoluteFilePath = z
  .string()
  .max(4096, { error: "must be at most 4096 characters" })
  .refine((s) => s.startsWith("/"), { error: "must be an absolute path (start with /)" })
  .refine((s) => !CONTROL.test(s), { error: "must not contain a newline or NUL" })
  .refine((s) => !s.endsWith("/"), { error: "must name a file, not a directory (no trailing /)" });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `apt-get install` of Debian/Ubuntu packages (`name`, `name=version`, `name:arch`). */
export const AptInstallStepSchema = z.strictObject({
  kind: z.literal("apt-install"),
  /** Package names, each passed to apt-get as one quoted argument. */
  packages: packageList,
  /**
   * Pass `--no-install-recommends`.
   * @default true
   */
  noInstallRecommends: z.boolean().default(true),
});

/** `python3 -m pip install` of requirement specifiers (`numpy>=1.26`, `pkg[extra]`, a URL). */
export const PipInstallStepSchema = z.strictObject({
  kind: z.literal("pip-install"),
  /** Requirement specifiers, each passed to pip as one quoted argument. */
  packages: packageList,
  /**
   * An index URL (`--index-url`).
   * @default undefined (pip's default index)
   */
  indexUrl: z.url({ error: "must be an http(s) URL" }).optional(),
  /**
   * Pass `--break-system-packages` (needed by Debian's own Python, PEP 668; not by the python:* images).
   * @default false
   */
  breakSystemPackages: z.boolean().default(false),
});

/** `npm install -g` of npm packages (`name`, `@scope/name@1.2.3`). */
export const NpmInstallStepSchema = z.strictObject({
  kind: z.literal("npm-install"),
  /** Package specifiers, each passed to npm as one quoted argument. */
  packages: packageList,
});

/** A command run at build time: a string runs through `/bin/sh -c`, an array runs as-is (exec form). */
export const RunStepSchema = z.strictObject({
  kind: z.literal("run"),
  /** A one-line shell command, or an argv array (no shell). */
  command: z.union([
    oneLine("RUN command")
      .min(1, { error: "must not be empty" })
      .refine((s) => !/\\\s*$/.test(s), {
        error: "must not end with a backslash (Docker would join it with the next line)",
      }),
    z
      .array(z.string().refine((s) => !s.includes("\0"), { error: "must not contain NUL" }))
      .min(1, { error: "must have at least the program to run" }),
  ]),
});

/** Environment variables set in the image (Dockerfile `ENV`, values written literally: no `$` expansion). */
export const EnvStepSchema = z.strictObject({
  kind: z.literal("env"),
  /** Names (`[A-Za-z_][A-Za-z0-9_]*`) to one-line values. */
  vars: z.record(z.string(), oneLine("ENV value")).superRefine((vars, ctx) => {
    const names = Object.keys(vars);
    if (names.length === 0) ctx.addIssue({ code: "custom", message: "must set at least one variable" });
    for (const name of names) {
      if (!ENV_NAME.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "is not a valid variable name (letters, digits and _, not starting with a digit)",
        });
      }
    }
  }),
});

/** The working directory for later steps and for the container (Dockerfile `WORKDIR`). */
export const WorkdirStepSchema = z.strictObject({
  kind: z.literal("workdir"),
  /** An absolute path (created if missing). */
  path: safePath,
});

/** The user later steps and the container run as (Dockerfile `USER`). */
export const UserStepSchema = z.strictObject({
  kind: z.literal("user"),
  /** A user name or uid, optionally `:group`. */
  user: z
    .string()
    .max(64, { error: "must be at most 64 characters" })
    .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*(:[A-Za-z0-9_][A-Za-z0-9._-]*)?$/, {
      error: "must be a user name or uid, optionally :group (letters, digits and . _ -)",
    }),
});

/** A file written into the image from content held in the spec (no build context needed, works on Modal). */
export const CopyInlineStepSchema = z
  .strictObject({
    kind: z.literal("copy-inline"),
    /** Absolute path of the file to write (parent directories are created). */
    path: AbsoluteFilePath,
    /** The file's content, as text or as base64 (see `encoding`). */
    content: z.string(),
    /**
     * How `content` is encoded: `utf8` text or `base64` bytes.
     * @default "utf8"
     */
    encoding: z.enum(["utf8", "base64"]).default("utf8"),
    /**
     * Octal permission bits as a string (quote it in YAML).
     * @default "0644"
     */
    mode: z
      .string({ error: 'must be an octal string like "0644" (quote it in YAML)' })
      .regex(/^[0-7]{3,4}$/, { error: 'must be an octal string like "0644" or "755"' })
      .default("0644")
      .transform((mode) => mode.padStart(4, "0")),
  })
  .superRefine((step, ctx) => {
    if (
      step.encoding === "base64" &&
      !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(step.content)
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["content"],
        message: "is not valid base64 (encoding is base64)",
      });
    }
  });

/** One build step; steps run in order. */
export const StepSchema = z.discriminatedUnion("kind", [
  AptInstallStepSchema,
  PipInstallStepSchema,
  NpmInstallStepSchema,
  RunStepSchema,
  EnvStepSchema,
  WorkdirStepSchema,
  UserStepSchema,
  CopyInlineStepSchema,
]);

/** Start from an image in a registry. */
export const RegistryBaseSchema = z.strictObject({
  kind: z.literal("registry"),
  /** The image reference, e.g. `python:3.12-slim`. */
  image: ImageRefSchema,
});

/** Start from the text of a Dockerfile; the steps are appended to its last stage. */
export const DockerfileBaseSchema = z.strictObject({
  kind: z.literal("dockerfile"),
  /** The Dockerfile text (no build context is sent, so it cannot COPY local files on Modal). */
  content: z
    .string()
    .max(1_000_000, { error: "must be at most 1,000,000 characters" })
    .superRefine((content, ctx) => {
      for (const problem of dockerfileBaseProblems(content))
        ctx.addIssue({ code: "custom", message: problem });
    }),
});

/** Where an image starts. */
export const BaseSchema = z.discriminatedUnion("kind", [RegistryBaseSchema, DockerfileBaseSchema]);

const PortSchema = z
  .number()
  .int({ error: "must be an integer" })
  .min(1, { error: "must be between 1 and 65535" })
  .max(65535, { error: "must be between 1 and 65535" });

/** The default port the action server listens on inside the sandbox (OpenHands uses the same). */
export const DEFAULT_SERVER_PORT = 60000;

/** Install `@agent-runtime/action-server` from an npm registry at a pinned version (needs npm in the image). */
export const NpmServerInstallSchema = z.strictObject({
  strategy: z.literal("npm"),
  /** The exact version to install (no ranges: the image must be reproducible). */
  version: z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, {
    error: "must be an exact version like 1.2.3 (no ranges or tags: the image must be reproducible)",
  }),
  /**
   * The npm package name.
   * @default "@agent-runtime/action-server"
   */
  package: z
    .string()
    .regex(/^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/, {
      error: "must be an npm package name",
    })
    .default("@agent-runtime/action-server"),
  /**
   * The npm registry URL (`--registry`).
   * @default undefined (npm's configured registry)
   */
  registry: z.url({ error: "must be an http(s) URL" }).optional(),
});

/** Write the action-server's one-file bundle (`dist/bin.cjs`) into the image; no npm needed. */
export const InlineServerInstallSchema = z.strictObject({
  strategy: z.literal("inline"),
  /** The bundle's JavaScript text (see `readActionServerBundle`). */
  bundle: z.string().min(1, { error: "must not be empty" }),
  /**
   * The bundle's version, for humans and logs; the content hash identifies it.
   * @default undefined
   */
  version: z.string().max(64).optional(),
});

/** The image already has the action-server on its PATH (or at `command`); nothing is installed. */
export const PreinstalledServerInstallSchema = z.strictObject({
  strategy: z.literal("preinstalled"),
  /**
   * The command that starts the server.
   * @default "agent-runtime-action-server"
   */
  command: z
    .string()
    .regex(/^[A-Za-z0-9._/+-]+$/, { error: "must be a command name or path (letters, digits and . _ / + -)" })
    .default("agent-runtime-action-server"),
});

/** How the agent-runtime action server gets into the image. */
export const ServerInstallSchema = z.discriminatedUnion("strategy", [
  NpmServerInstallSchema,
  InlineServerInstallSchema,
  PreinstalledServerInstallSchema,
]);

/** Our action server (`@agent-runtime/action-server`: Node.js 20, 22 or 24, and bash). */
export const AgentRuntimeServerSchema = z.strictObject({
  kind: z.literal("agent-runtime"),
  /** How the server is installed. */
  install: ServerInstallSchema,
  /**
   * The port the server listens on.
   * @default 60000
   */
  port: PortSchema.default(DEFAULT_SERVER_PORT),
  /**
   * The working directory passed as `--working-dir` (created in the image).
   * @default "/workspace"
   */
  workingDir: safePath.default("/workspace"),
  /**
   * The address passed as `--host`.
   * @default "0.0.0.0"
   */
  host: z
    .string()
    .regex(/^[0-9A-Za-z.:-]+$/, { error: "must be an IP address or host name" })
    .default("0.0.0.0"),
  /**
   * The lowest Node.js major version accepted in the image (the build fails clearly below it). The
   * action-server is supported on the LTS lines 20, 22 and 24.
   * @default 20
   */
  minNodeMajor: z
    .number()
    .int()
    .min(20, { error: "must be at least 20 (the action-server runs on Node.js 20, 22 and 24)" })
    .default(20),
});

/** OpenHands' own `action_execution_server`, as shipped in their stock runtime images. */
export const OpenHandsServerSchema = z.strictObject({
  kind: z.literal("openhands"),
  /**
   * The port the server listens on.
   * @default 60000
   */
  port: PortSchema.default(DEFAULT_SERVER_PORT),
  /**
   * `--working-dir`.
   * @default "/workspace"
   */
  workingDir: safePath.default("/workspace"),
  /**
   * `--plugins` (empty: the flag is left out).
   * @default ["agent_skills", "jupyter"] (what CodeActAgent requests)
   */
  plugins: z
    .array(z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "must be a plugin name like agent_skills" }))
    .default(["agent_skills", "jupyter"]),
  /**
   * `--username`.
   * @default "openhands"
   */
  username: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*$/, { error: "must be a user name" })
    .default("openhands"),
  /**
   * `--user-id`.
   * @default 1000
   */
  userId: z.number().int().min(0).default(1000),
  /**
   * Start the browser; `false` adds `--no-enable-browser`.
   * @default true
   */
  enableBrowser: z.boolean().default(true),
  /**
   * The directory the command must run in (their poetry project).
   * @default "/openhands/code"
   */
  codeDir: safePath.default("/openhands/code"),
  /**
   * The micromamba binary that runs their Python environment.
   * @default "/openhands/micromamba/bin/micromamba"
   */
  micromamba: safePath.default("/openhands/micromamba/bin/micromamba"),
});

/** The action server the image runs and how to start it. */
export const ServerSchema = z.discriminatedUnion("kind", [AgentRuntimeServerSchema, OpenHandsServerSchema]);

/** The current spec format version. */
export const SPEC_VERSION = 1;

/**
 * A declarative image: a base, ordered build steps and, optionally, the action server it runs. The same spec
 * renders to a Dockerfile, a Modal image and content-hash tags.
 */
export const ImageSpecSchema = z.strictObject({
  /**
   * The spec format version.
   * @default 1
   */
  specVersion: z.literal(SPEC_VERSION, { error: `must be ${SPEC_VERSION}` }).default(SPEC_VERSION),
  /** Where the image starts. */
  base: BaseSchema,
  /**
   * Build steps, in order.
   * @default []
   */
  steps: z.array(StepSchema).default([]),
  /**
   * The action server (see `withActionServer` and `openHandsRuntimeSpec`).
   * @default undefined (no server: the image only gets its steps)
   */
  server: ServerSchema.optional(),
});

/** A spec as written by users (defaults may be left out). */
export type ImageSpecInput = z.input<typeof ImageSpecSchema>;
/** A validated spec with every default filled in. */
export type ImageSpec = z.output<typeof ImageSpecSchema>;
/** One step as written by users. */
export type StepInput = z.input<typeof StepSchema>;
/** One validated step. */
export type Step = z.output<typeof StepSchema>;
/** A base as written by users. */
export type BaseInput = z.input<typeof BaseSchema>;
/** The server part of a spec as written by users. */
export type ServerInput = z.input<typeof ServerSchema>;
/** A validated server part. */
export type Server = z.output<typeof ServerSchema>;
/** A validated agent-runtime server part. */
export type AgentRuntimeServer = z.output<typeof AgentRuntimeServerSchema>;
/** A validated OpenHands server part. */
export type OpenHandsServer = z.output<typeof OpenHandsServerSchema>;
/** How the agent-runtime server is installed, as written by users. */
export type ServerInstallInput = z.input<typeof ServerInstallSchema>;

/**
 * Validates a spec (from code, JSON or YAML) and fills in defaults. Throws an `ImageBuilderError` with code
 * `INVALID_ARGUMENT` whose `issues` point into the spec, e.g. `steps[3].packages[0]: must not start with '-'`.
 */
export function parseImageSpec(input: unknown): ImageSpec {
  return parseOrThrow(ImageSpecSchema, input, "image spec");
}

/**
 * The canonical JSON form of a spec: defaults filled in, object keys sorted at every depth, no whitespace.
 * Equal specs give equal text whatever their key order, and `parseImageSpec(JSON.parse(text))` gives the
 * same spec back.
 */
export function canonicalJson(spec: ImageSpecInput | ImageSpec): string {
  return stableStringify(parseImageSpec(spec));
}
