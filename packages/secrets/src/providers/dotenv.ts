import { readFile } from "node:fs/promises";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { toSecretsError } from "../errors.js";
import { hostPath } from "../paths.js";
import { parseDotenv } from "./dotenv-parse.js";
import type { SecretStore } from "./types.js";

/** Reads a dotenv file at each `load()` (so edits are picked up by the next sandbox). */
export class DotenvStore implements SecretStore {
  /** Absolute path of the file. */
  readonly path: string;
  readonly #optional: boolean;

  constructor(options: { path: string; optional?: boolean }) {
    this.path = hostPath(options.path);
    this.#optional = options.optional ?? false;
  }

  get label(): string {
    return `dotenv:${this.path}`;
  }

  async load(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") {
        if (this.#optional) return {};
        throw new RuntimeError(
          "NOT_FOUND",
          `The dotenv file ${this.path} does not exist. Create it, fix the path, or set optional: true.`,
          { cause: err },
        );
      }
      throw toSecretsError(err, `read the dotenv file ${this.path}`);
    }
    return parseDotenv(text, this.path);
  }

  /** The label only. */
  toJSON(): { store: string } {
    return { store: this.label };
  }
}
