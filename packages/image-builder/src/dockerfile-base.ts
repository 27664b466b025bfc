import { ImageBuilderError } from "./errors.js";

/** One logical Dockerfile instruction: continuation lines joined, comments and blank lines dropped. */
export interface DockerfileInstruction {
  /** The keyword, upper-cased (`FROM`, `RUN`...). */
  keyword: string;
  /** Everything after the keyword, trimmed. */
  args: string;
  /** 1-based number of the physical line the instruction starts on. */
  line: number;
}

interface Scan {
  instructions: DockerfileInstruction[];
  /** The value of an `escape` parser directive, when there is one. */
  escapeDirective: string | undefined;
  /** True when the text ends inside a line continuation (a trailing backslash). */
  openContinuation: boolean;
}

const DIRECTIVE = /^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$/;

/** Splits Dockerfile text into logical instructions the way Docker's parser does (default escape `\`). */
export function scanDockerfile(content: string): Scan {
  const lines = content.split(/\r?\n/);
  let escapeDirective: string | undefined;
  let inDirectives = true;
  const instructions: DockerfileInstruction[] = [];
  let pending: { text: string; line: number } | undefined;
  lines.forEach((raw, index) => {
    if (inDirectives) {
      const directive = DIRECTIVE.exec(raw);
      if (directive) {
        if (directive[1]?.toLowerCase() === "escape") escapeDirective = directive[2];
        return;
      }
      inDirectives = false;
    }
    const trimmed = raw.trim();
    // Docker drops comment and blank lines, also inside a continued instruction.
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const continues = /\\\s*$/.test(raw);
    const piece = continues ? raw.replace(/\\\s*$/, "") : raw;
    if (pending) pending.text += piece;
    else pending = { text: piece, line: index + 1 };
    if (!continues) {
      instructions.push(toInstruction(pending.text, pending.line));
      pending = undefined;
    }
  });
  if (pending && pending.text.trim() !== "") instructions.push(toInstruction(pending.text, pending.line));
  return { instructions, escapeDirective, openContinuation: pending !== undefined };
}

function toInstruction(text: string, line: number): DockerfileInstruction {
  const trimmed = text.trim();
  const match = /^(\S+)\s*([\s\S]*)$/.exec(trimmed);
  return { keyword: (match?.[1] ?? "").toUpperCase(), args: (match?.[2] ?? "").trim(), line };
}

/**
 * Problems that stop a Dockerfile base from being extended safely by appending instructions; empty when it
 * is fine. Used by the spec schema (`base.content`).
 */
export function dockerfileBaseProblems(content: string): string[] {
  const problems: string[] = [];
  const scan = scanDockerfile(content);
  if (scan.escapeDirective !== undefined && scan.escapeDirective !== "\\") {
    problems.push(
      `the escape parser directive (${JSON.stringify(scan.escapeDirective)}) is not supported: the appended ` +
        "instructions are quoted for the default escape character; remove the directive",
    );
  }
  if (!scan.instructions.some((i) => i.keyword === "FROM")) {
    problems.push("has no FROM instruction; a Dockerfile base must start from an image");
  }
  if (scan.openContinuation) {
    problems.push(
      "ends inside a line continuation (a trailing backslash), which would swallow the next instruction; " +
        "finish the last instruction",
    );
  }
  return problems;
}

/** A Dockerfile base turned into Modal's form: a registry tag and the commands to run on top of it. */
export interface ModalDockerfileBase {
  /** The image the single `FROM` names (for `images.fromRegistry`). */
  tag: string;
  /** The remaining instructions, one logical line each. */
  commands: string[];
}

function unsupported(line: number, what: string): ImageBuilderError {
  const issue = `base.content (line ${line}): ${what}`;
  return new ImageBuilderError("UNSUPPORTED", `The Dockerfile base cannot be built on Modal:\n  ${issue}`, {
    issues: [issue],
  });
}

/**
 * Converts a Dockerfile base to Modal's `fromRegistry(tag).dockerfileCommands(commands)` form. Modal builds
 * from a registry image and rejects local `COPY`, so multi-stage files, `ARG` before `FROM`, `FROM --platform`,
 * local `COPY`/`ADD` and heredocs raise an UNSUPPORTED error naming the line.
 */
export function dockerfileBaseForModal(content: string): ModalDockerfileBase {
  const { instructions } = scanDockerfile(content);
  const first = instructions[0];
  if (!first) throw unsupported(1, "the Dockerfile has no instructions");
  if (first.keyword !== "FROM") {
    throw unsupported(
      first.line,
      `${first.keyword} before FROM cannot be expressed with Modal's fromRegistry; put the image name in FROM directly`,
    );
  }
  const fromWords = first.args.split(/\s+/);
  if (fromWords[0]?.startsWith("--")) {
    throw unsupported(first.line, `FROM ${fromWords[0]} is not supported on Modal; remove the flag`);
  }
  const tag = fromWords[0] ?? "";
  if (fromWords.length !== 1 && !(fromWords.length === 3 && fromWords[1]?.toUpperCase() === "AS")) {
    throw unsupported(first.line, `cannot read the image of "FROM ${first.args}"`);
  }
  if (tag.includes("$")) {
    throw unsupported(first.line, `FROM uses a variable (${tag}); Modal needs a literal image name`);
  }
  const commands: string[] = [];
  for (const instruction of instructions.slice(1)) {
    const words = instruction.args.split(/\s+/);
    const operands = words.filter((w) => !w.startsWith("--"));
    switch (instruction.keyword) {
      case "FROM":
        throw unsupported(
          instruction.line,
          "multi-stage Dockerfiles are not supported on Modal; use one FROM and build other stages elsewhere",
        );
      case "COPY":
        // Modal accepts only `COPY --from=...` as the first flag.
        if (!words[0]?.toLowerCase().startsWith("--from=")) {
          throw unsupported(
            instruction.line,
            "COPY from the local build context is rejected by Modal (only COPY --from=<image> as the first " +
              "flag works); use a copyInline step instead",
          );
        }
        break;
      case "ADD":
        if (!/^https?:\/\//i.test(operands[0] ?? "")) {
          throw unsupported(
            instruction.line,
            "ADD from the local build context is not possible on Modal; use a copyInline step or ADD a URL",
          );
        }
        break;
    }
    if (operands[0]?.startsWith("<<")) {
      throw unsupported(
        instruction.line,
        `heredocs (${instruction.keyword} <<...) are not supported on Modal`,
      );
    }
    commands.push(`${instruction.keyword} ${instruction.args}`.trim());
  }
  return { tag, commands };
}
