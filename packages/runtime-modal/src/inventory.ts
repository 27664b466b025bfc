import { type InventorySandbox, RuntimeError, type SandboxInventory } from "@agent-runtime/runtime-core";
import { toModalRuntimeError, withRetry } from "./errors.js";
import { MANAGED_BY, TAGS } from "./naming.js";
import type { ModalServices } from "./services.js";

/** A running sandbox of the provider's App, with the tags Modal keeps for it. */
export interface ListedSandbox {
  sandboxId: string;
  /** The sandbox's name ("" when it has none). */
  name: string;
  /** Its tags, read per sandbox (`getTags()`), since list results may carry none. */
  tags: Record<string, string>;
  /** Epoch ms. */
  createdAtMs: number;
}

/** How many `getTags()` calls a listing keeps in flight at once. */
const TAG_READS_IN_FLIGHT = 8;

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order of `items`. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * runtime-core's {@link SandboxInventory} for Modal: lists the running sandboxes of the provider's App that carry
 * a tag key, and terminates one by id. A cost plugin's orphan sweeper (cost-guard's `guard.sweepOrphans(inventory)`)
 * uses it to settle leases without a sandbox and stop sandboxes without a lease. The provider's warm-pool cleanup
 * and `attachSession` list through it too.
 *
 * Listing does not trust the tags of Modal's list results: Modal's proto marks `SandboxInfo.tags` "not yet exposed
 * in client library", so they may be empty. The list request filters by tag on the server, then each sandbox's tags
 * are read with `getTags()` (a few at a time) and checked again.
 */
export class ModalSandboxInventory implements SandboxInventory {
  readonly provider = "modal";
  readonly #svc: ModalServices;

  constructor(services: ModalServices) {
    this.#svc = services;
  }

  /**
   * Sandboxes made by runtime-modal (its `managed-by` tag) that carry `tagKey`, with their tags. Sandboxes
   * tagged by other tools are not listed. Throws UNSUPPORTED with `sandboxApi: "v2"` (V2 sandboxes keep no tags:
   * an empty answer would tell a sweeper that every lease lost its sandbox).
   */
  async listByTag(tagKey: string): Promise<InventorySandbox[]> {
    const mine = await this.list({ [TAGS.managedBy]: MANAGED_BY });
    return mine
      .filter((sb) => Object.hasOwn(sb.tags, tagKey))
      .map(({ sandboxId, tags, createdAtMs }) => ({ sandboxId, tags, createdAtMs }));
  }

  /**
   * Running sandboxes of the App whose tags include every entry of `match`, newest first. The list request
   * filters by `match` on the server; each sandbox's tags are then read (`getTags()`) and `match` checked again,
   * so a server that ignored the filter cannot make a caller act on the wrong sandbox.
   */
  async list(match: Readonly<Record<string, string>>): Promise<ListedSandbox[]> {
    const svc = this.#svc;
    const o = svc.options;
    if (o.sandboxApi === "v2") {
      throw new RuntimeError(
        "UNSUPPORTED",
        `Listing sandboxes by tag needs Modal's V1 sandbox API: V2 sandboxes keep no tags and are not listed. The modal runtime option sandboxApi is "v2"; use "v1" (the default) to sweep orphans, pool or attach by session id.`,
      );
    }
    const found = await this.#listIds(match);
    const withTags = await mapBounded(found, TAG_READS_IN_FLIGHT, async (sb) => {
      const tags = await this.#tagsOf(sb.sandboxId);
      return tags === undefined ? undefined : { ...sb, tags };
    });
    return withTags.filter(
      (sb): sb is ListedSandbox =>
        sb !== undefined && Object.entries(match).every(([k, v]) => sb.tags[k] === v),
    );
  }

  /** Ids, names and creation times of the App's running V1 sandboxes that match `match` (server-side filter). */
  async #listIds(match: Readonly<Record<string, string>>): Promise<Omit<ListedSandbox, "tags">[]> {
    const svc = this.#svc;
    const app = await svc.app();
    const filter = Object.entries(match).map(([tagName, tagValue]) => ({ tagName, tagValue }));
    const out: Omit<ListedSandbox, "tags">[] = [];
    let beforeTimestamp: number | undefined;
    for (;;) {
      // The SDK's typed control-plane client: `sandboxes.list()` keeps neither names nor creation times.
      const resp = await withRetry(
        () =>
          svc.client.cpClient.sandboxList({
            appId: app.appId,
            includeFinished: false,
            tags: filter,
            ...(beforeTimestamp !== undefined ? { beforeTimestamp } : {}),
          }),
        {
          step: "list",
          what: `Listing the sandboxes of the Modal App "${svc.options.appName}" failed`,
          retry: svc.options.retry,
        },
      );
      const page = resp.sandboxes;
      if (page.length === 0) return out;
      for (const info of page)
        out.push({ sandboxId: info.id, name: info.name, createdAtMs: Math.round(info.createdAt * 1000) });
      beforeTimestamp = page[page.length - 1]?.createdAt;
    }
  }

  /** A sandbox's tags, or undefined when Modal no longer knows it (it ended after the listing). */
  async #tagsOf(sandboxId: string): Promise<Record<string, string> | undefined> {
    const svc = this.#svc;
    try {
      return await withRetry(async () => (await svc.client.sandboxes.fromId(sandboxId)).getTags(), {
        step: "tags",
        what: `Reading the tags of sandbox ${sandboxId} failed`,
        retry: svc.options.retry,
      });
    } catch (err) {
      if (toModalRuntimeError(err, "tags", "").code === "NOT_FOUND") return undefined;
      throw err;
    }
  }

  async terminate(sandboxId: string): Promise<void> {
    const client = this.#svc.client;
    try {
      await withRetry(
        async () => {
          const sb = await client.sandboxes.fromId(sandboxId);
          await sb.terminate({ wait: true });
        },
        {
          step: "terminate",
          what: `Terminating sandbox ${sandboxId} failed`,
          retry: this.#svc.options.retry,
        },
      );
    } catch (err) {
      const e = toModalRuntimeError(err, "terminate", `Terminating sandbox ${sandboxId} failed`);
      if (e.code !== "NOT_FOUND") throw e;
    }
  }
}
