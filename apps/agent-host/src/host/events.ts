import type { EventRecord } from "../store.js";

/** A session event as delivered to subscribers (and over SSE). */
export type HostEvent = EventRecord;

/** What a subscriber gets: an event, or `null` when the session closed or the host shut down. */
export type EventListener = (event: HostEvent | null) => void;

/**
 * A piece of a running task's output, as the sandbox printed it (redacted). Live only: never stored in the
 * event log, no event id; the task's observation holds the output for good. The running task's most recent
 * {@link OUTPUT_TAIL_CHARS} characters are kept in memory (dropped when it finishes) for late followers.
 */
export interface OutputEvent {
  sessionId: string;
  taskId: string;
  /** 1, 2, ... per task: a gap means pieces were dropped (from the kept tail, or for a slow reader). */
  seq: number;
  content: string;
  atMs: number;
}

/** Receives output events. */
export type OutputListener = (event: OutputEvent) => void;

/** Characters of a running task's latest output kept for a task stream opened late. */
export const OUTPUT_TAIL_CHARS = 64 * 1024;

type Waiters = Map<string, Set<() => void>>;

/**
 * Who waits on what in this process: subscribers of each session's events (SSE), and long-polls waiting for
 * a task to finish or a session to change state. In memory only: events themselves are stored by the host
 * before they are delivered here.
 */
export class EventHub {
  readonly #subscribers = new Map<string, Set<EventListener>>();
  readonly #taskWaiters: Waiters = new Map();
  readonly #sessionWaiters: Waiters = new Map();
  readonly #outputSubscribers = new Map<string, Set<OutputListener>>();
  /** Latest output of each running task, bounded by {@link OUTPUT_TAIL_CHARS}. */
  readonly #tails = new Map<string, { events: OutputEvent[]; chars: number }>();
  #closed = false;

  /** Delivers a stored event to the session's subscribers. */
  deliver(event: HostEvent): void {
    for (const listener of this.#subscribers.get(event.sessionId) ?? []) listener(event);
  }

  /** Tells the session's subscribers that its stream is over (the session closed). */
  end(sessionId: string): void {
    for (const listener of this.#subscribers.get(sessionId) ?? []) listener(null);
  }

  /** Adds a subscriber to a session's events; returns the unsubscribe function. */
  subscribe(sessionId: string, listener: EventListener): () => void {
    const set = this.#subscribers.get(sessionId) ?? new Set<EventListener>();
    this.#subscribers.set(sessionId, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#subscribers.delete(sessionId);
    };
  }

  /** Delivers a piece of a running task's output to the session's output subscribers (not stored). */
  deliverOutput(event: OutputEvent): void {
    if (this.#closed) return;
    const tail = this.#tails.get(event.taskId) ?? { events: [], chars: 0 };
    this.#tails.set(event.taskId, tail);
    tail.events.push(event);
    tail.chars += event.content.length;
    while (tail.chars > OUTPUT_TAIL_CHARS && tail.events.length > 1)
      tail.chars -= tail.events.shift()!.content.length;
    for (const listener of this.#outputSubscribers.get(event.sessionId) ?? []) listener(event);
  }

  /** The kept latest output of a running task (empty once it finished). */
  outputTail(taskId: string): OutputEvent[] {
    return [...(this.#tails.get(taskId)?.events ?? [])];
  }

  /** Forgets a task's kept output (it finished: its observation has the output). */
  endOutput(taskId: string): void {
    this.#tails.delete(taskId);
  }

  /** Adds a subscriber to a session's output events; returns the unsubscribe function. */
  subscribeOutput(sessionId: string, listener: OutputListener): () => void {
    const set = this.#outputSubscribers.get(sessionId) ?? new Set<OutputListener>();
    this.#outputSubscribers.set(sessionId, set);
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#outputSubscribers.delete(sessionId);
    };
  }

  /** Wakes the long-polls waiting for task `id`. */
  taskChanged(id: string): void {
    notify(this.#taskWaiters, id);
  }

  /** Wakes the long-polls waiting on session `id`. */
  sessionChanged(id: string): void {
    notify(this.#sessionWaiters, id);
  }

  /** Waits up to `ms` for {@link taskChanged} of `id` (or the abort of `signal`, or {@link close}). */
  waitTask(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return this.#wait(this.#taskWaiters, id, ms, signal);
  }

  /** Waits up to `ms` for {@link sessionChanged} of `id` (or the abort of `signal`, or {@link close}). */
  waitSession(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return this.#wait(this.#sessionWaiters, id, ms, signal);
  }

  /** Ends every stream and wakes every waiter (the host shuts down). Later waits return at once. */
  close(): void {
    this.#closed = true;
    for (const set of this.#subscribers.values()) for (const listener of set) listener(null);
    this.#subscribers.clear();
    this.#outputSubscribers.clear();
    this.#tails.clear();
    for (const map of [this.#taskWaiters, this.#sessionWaiters])
      for (const key of [...map.keys()]) notify(map, key);
  }

  async #wait(map: Waiters, key: string, ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || this.#closed) return;
    await new Promise<void>((resolve) => {
      const set = map.get(key) ?? new Set<() => void>();
      map.set(key, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}

function notify(map: Waiters, key: string): void {
  const set = map.get(key);
  if (!set) return;
  map.delete(key);
  for (const wake of set) wake();
}
