import type { RuntimeError } from "@agent-runtime/runtime-core";

/** What `p` rejects with (taken to be a RuntimeError); fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<RuntimeError> {
  try {
    await p;
  } catch (err) {
    return err as RuntimeError;
  }
  throw new Error("expected a rejection");
}
