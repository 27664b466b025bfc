import type { Logger } from "@agent-runtime/runtime-core";
import type { App, ModalClient } from "modal";
import { toModalRuntimeError } from "./errors.js";

/** A sandbox the {@link LivenessMonitor} watches for one runtime. */
export interface WatchedSandbox {
  readonly sandboxId: string;
  /** Asks Modal about this sandbox alone: `null` while it runs, else its exit code (`-1`: Modal does not know it). */
  poll(): Promise<number | null>;
  /** Called once, when the sandbox is found finished. */
  onGone(code: number): void;
}

/** The longest wait between two checks of one sandbox that the list does not show, in ms. */
const MAX_BACKOFF_MS = 60_000;
/** How many single-sandbox checks run at once. */
const CONCURRENCY = 8;

interface Entry {
  watched: WatchedSandbox;
  /** When it may be checked alone again (epoch ms); 0: now. */
  nextCheckAt: number;
  backoffMs: number;
}

/**
 * One liveness poll per provider, so the calls to Modal do not grow with the number of sandboxes: every
 * `intervalMs`, one listing of the App's running sandboxes (one `SandboxListV2` call per 100 sandboxes, ids only),
 * then a single-sandbox check (`poll()`) only for a watched sandbox the listing does not show, which either ended
 * (its runtime is told) or is running but not listed. Such a sandbox, and every sandbox while the listing fails, is
 * checked alone with exponential backoff (`intervalMs` doubling up to 60 s), so even a listing that never shows it
 * costs O(log) calls, not one per interval.
 */
export class LivenessMonitor {
  readonly #intervalMs: number;
  readonly #listLive: () => Promise<ReadonlySet<string>>;
  readonly #logger: Logger;
  /** By watcher: two runtimes may watch the same sandbox (attached twice). */
  readonly #entries = new Map<WatchedSandbox, Entry>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(init: { intervalMs: number; listLive: () => Promise<ReadonlySet<string>>; logger: Logger }) {
    this.#intervalMs = init.intervalMs;
    this.#listLive = init.listLive;
    this.#logger = init.logger;
  }

  /** How many sandboxes are watched. */
  get size(): number {
    return this.#entries.size;
  }

  /** Watches a sandbox until it is found finished or the returned function is called. */
  watch(watched: WatchedSandbox): () => void {
    const entry: Entry = { watched, nextCheckAt: 0, backoffMs: this.#intervalMs };
    this.#entries.set(watched, entry);
    this.#schedule();
    return () => {
      this.#entries.delete(watched);
    };
  }

  #schedule(): void {
    if (this.#timer || this.#running || this.#entries.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    this.#running = true;
    try {
      let live: ReadonlySet<string> | undefined;
      try {
        live = await this.#listLive();
      } catch (err) {
        this.#logger.debug(
          "listing the Modal App's sandboxes failed; checking them one by one, with backoff",
          {
            code: toModalRuntimeError(err, "list", "list").code,
          },
        );
      }
      const now = Date.now();
      const due: Entry[] = [];
      for (const entry of this.#entries.values()) {
        if (live?.has(entry.watched.sandboxId)) {
          entry.nextCheckAt = 0;
          entry.backoffMs = this.#intervalMs;
        } else if (entry.nextCheckAt <= now) {
          due.push(entry);
        }
      }
      for (let i = 0; i < due.length; i += CONCURRENCY) {
        await Promise.all(due.slice(i, i + CONCURRENCY).map((entry) => this.#checkAlone(entry)));
      }
    } finally {
      this.#running = false;
      this.#schedule();
    }
  }

  async #checkAlone(entry: Entry): Promise<void> {
    const { watched } = entry;
    let code: number | null;
    try {
      code = await watched.poll();
    } catch (err) {
      this.#logger.debug("modal liveness check failed; will retry", {
        sandboxId: watched.sandboxId,
        code: toModalRuntimeError(err, "poll", "poll").code,
      });
      code = null;
    }
    if (code === null) {
      entry.nextCheckAt = Date.now() + entry.backoffMs;
      entry.backoffMs = Math.min(MAX_BACKOFF_MS, entry.backoffMs * 2);
      return;
    }
    if (this.#entries.get(watched) !== entry) return;
    this.#entries.delete(watched);
    watched.onGone(code);
  }
}

/**
 * The ids of the App's running sandboxes (V1 and V2: `SandboxListV2` lists both), one call per page, no tags.
 */
export async function liveSandboxIds(client: ModalClient, app: App): Promise<Set<string>> {
  const ids = new Set<string>();
  let beforeTimestamp: number | undefined;
  for (;;) {
    const resp = await client.cpClient.sandboxListV2({
      appId: app.appId,
      includeFinished: false,
      tags: [],
      ...(beforeTimestamp !== undefined ? { beforeTimestamp } : {}),
    });
    const page = resp.sandboxes;
    if (page.length === 0) return ids;
    for (const info of page) ids.add(info.id);
    const last = page[page.length - 1]?.createdAt;
    // A page that does not move the cursor would repeat forever.
    if (last === undefined || last === beforeTimestamp) return ids;
    beforeTimestamp = last;
  }
}
