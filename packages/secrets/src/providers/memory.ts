import { inspect } from "node:util";
import type { SecretStore } from "./types.js";

/** Values held in memory (tests, or values a host fetched itself). */
export class MemoryStore implements SecretStore {
  readonly label = "memory";
  readonly #values: Readonly<Record<string, string>>;

  constructor(values: Readonly<Record<string, string>>) {
    this.#values = { ...values };
  }

  async load(): Promise<Record<string, string>> {
    return { ...this.#values };
  }

  /** Names only. */
  toJSON(): { store: string; names: string[] } {
    return { store: this.label, names: Object.keys(this.#values) };
  }

  [inspect.custom](): string {
    return `MemoryStore { names: ${JSON.stringify(Object.keys(this.#values))} }`;
  }
}
