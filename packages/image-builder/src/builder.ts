import type { z } from "zod";
import type {
  AptInstallStepSchema,
  BaseInput,
  CopyInlineStepSchema,
  ImageSpec,
  PipInstallStepSchema,
  ServerInstallInput,
  StepInput,
} from "./spec.js";
import { parseImageSpec } from "./spec.js";

type Options<TSchema extends z.ZodType> = Omit<z.input<TSchema>, "kind" | "packages">;

/** Options of `aptInstall` besides the packages. */
export type AptInstallOptions = Options<typeof AptInstallStepSchema>;
/** Options of `pipInstall` besides the packages. */
export type PipInstallOptions = Options<typeof PipInstallStepSchema>;
/** Options of `copyInline` besides path, content and mode. */
export type CopyInlineOptions = Pick<z.input<typeof CopyInlineStepSchema>, "encoding">;

/** Options of `withActionServer`: how the server is installed, and where it listens. */
export type ActionServerOptions = ServerInstallInput & {
  /**
   * The port the server listens on.
   * @default 60000
   */
  port?: number;
  /**
   * `--working-dir` (created in the image).
   * @default "/workspace"
   */
  workingDir?: string;
  /**
   * `--host`.
   * @default "0.0.0.0"
   */
  host?: string;
  /**
   * The lowest Node.js major version accepted in the image (at least 20: the action-server runs on the
   * LTS lines 20, 22 and 24).
   * @default 20
   */
  minNodeMajor?: number;
};

/** The step methods shared by both builder stages; each returns a new builder (builders are immutable). */
abstract class StepChain<TSelf> {
  protected constructor(protected readonly stepList: readonly StepInput[]) {}

  /** @internal A builder of the same stage with `steps`. */
  protected abstract with(steps: readonly StepInput[]): TSelf;

  /** The steps so far (as written, not yet validated). */
  get steps(): readonly StepInput[] {
    return this.stepList;
  }

  /** Adds any step object (as in a JSON spec). */
  step(step: StepInput): TSelf {
    return this.with([...this.stepList, step]);
  }

  /** `apt-get install` Debian/Ubuntu packages (each name is quoted; names may pin `=version`). */
  aptInstall(packages: readonly string[], options: AptInstallOptions = {}): TSelf {
    return this.step({ kind: "apt-install", packages: [...packages], ...options });
  }

  /** `python3 -m pip install` requirement specifiers (each is quoted: `numpy>=1.26` is safe). */
  pipInstall(packages: readonly string[], options: PipInstallOptions = {}): TSelf {
    return this.step({ kind: "pip-install", packages: [...packages], ...options });
  }

  /** `npm install -g` packages. */
  npmInstall(packages: readonly string[]): TSelf {
    return this.step({ kind: "npm-install", packages: [...packages] });
  }

  /** Runs a one-line shell command, or an argv array without a shell. */
  run(command: string | readonly string[]): TSelf {
    return this.step({ kind: "run", command: typeof command === "string" ? command : [...command] });
  }

  /** Sets environment variables (values are stored literally, `$` is not expanded). */
  env(vars: Readonly<Record<string, string>>): TSelf {
    return this.step({ kind: "env", vars: { ...vars } });
  }

  /** Sets the working directory (absolute; created if missing). */
  workdir(path: string): TSelf {
    return this.step({ kind: "workdir", path });
  }

  /** Sets the user later steps and the container run as. */
  user(user: string): TSelf {
    return this.step({ kind: "user", user });
  }

  /**
   * Writes a file from content held in the spec (text, or bytes as base64 with `{ encoding: "base64" }`).
   * Counts towards the inline size limit.
   */
  copyInline(path: string, content: string, mode = "0644", options: CopyInlineOptions = {}): TSelf {
    return this.step({ kind: "copy-inline", path, content, mode, ...options });
  }
}

/**
 * A builder with a base: add steps, an action server, then {@link ImageSpecBuilder.build}.
 */
export class ImageSpecBuilder extends StepChain<ImageSpecBuilder> {
  /** @internal Use {@link fromRegistry}, {@link fromDockerfile} or a recipe's `from...` methods. */
  constructor(
    private readonly baseInput: BaseInput,
    steps: readonly StepInput[] = [],
    private readonly serverInput: ActionServerOptions | undefined = undefined,
  ) {
    super(steps);
  }

  protected with(steps: readonly StepInput[]): ImageSpecBuilder {
    return new ImageSpecBuilder(this.baseInput, steps, this.serverInput);
  }

  /**
   * Makes the image run our action server: Node.js >= 20 and bash are ensured (from apt-get or apk when
   * missing; the build fails with a clear message otherwise), then the server is installed by `strategy`:
   * `npm` (a pinned version from a registry), `inline` (the bundle written into the image) or `preinstalled`.
   */
  withActionServer(options: ActionServerOptions): ImageSpecBuilder {
    return new ImageSpecBuilder(this.baseInput, this.stepList, options);
  }

  /**
   * Validates everything and returns the spec with defaults filled in. Throws an `ImageBuilderError`
   * (INVALID_ARGUMENT) listing every problem as `path: message`, e.g. `steps[3].packages[0]: ...`.
   */
  build(): ImageSpec {
    let server: unknown;
    if (this.serverInput !== undefined) {
      const { port, workingDir, host, minNodeMajor, ...install } = this.serverInput;
      server = { kind: "agent-runtime", install, port, workingDir, host, minNodeMajor };
    }
    return parseImageSpec({ base: this.baseInput, steps: this.stepList, server });
  }
}

/**
 * Steps without a base: a reusable recipe. It has no `build()`: a spec without a base cannot be finalised;
 * call {@link ImageRecipe.fromRegistry} or {@link ImageRecipe.fromDockerfile} first.
 */
export class ImageRecipe extends StepChain<ImageRecipe> {
  /** @internal Use {@link imageRecipe}. */
  constructor(steps: readonly StepInput[] = []) {
    super(steps);
  }

  protected with(steps: readonly StepInput[]): ImageRecipe {
    return new ImageRecipe(steps);
  }

  /** These steps on top of a registry image. */
  fromRegistry(image: string): ImageSpecBuilder {
    return new ImageSpecBuilder({ kind: "registry", image }, this.stepList);
  }

  /** These steps appended to a Dockerfile's text. */
  fromDockerfile(content: string): ImageSpecBuilder {
    return new ImageSpecBuilder({ kind: "dockerfile", content }, this.stepList);
  }
}

/** An empty recipe: steps first, the base later. */
export function imageRecipe(): ImageRecipe {
  return new ImageRecipe();
}

/**
 * Starts an image spec from a registry image.
 *
 * @example
 * ```ts
 * const spec = fromRegistry("python:3.12-slim")
 *   .aptInstall(["git", "ripgrep"])
 *   .pipInstall(["requests==2.32.3"])
 *   .withActionServer({ strategy: "npm", version: "0.1.0" })
 *   .build();
 * ```
 */
export function fromRegistry(image: string): ImageSpecBuilder {
  return new ImageSpecBuilder({ kind: "registry", image });
}

/** Starts an image spec from a Dockerfile's text; the steps are appended to it. */
export function fromDockerfile(content: string): ImageSpecBuilder {
  return new ImageSpecBuilder({ kind: "dockerfile", content });
}
