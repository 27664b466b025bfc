import type { Context } from "hono";
import type { AgentHost, HostEvent, OutputEvent } from "../host.js";

/** Formats one server-sent event. */
export function sseFrame(event: { id?: number; event: string; data: unknown }): string {
  const lines = JSON.stringify(event.data)
    .split("\n")
    .map((l) => `data: ${l}`)
    .join("\n");
  return `${event.id !== undefined ? `id: ${event.id}\n` : ""}event: ${event.event}\n${lines}\n\n`;
}

/** The id to replay after: the `Last-Event-ID` header when it is a number, else `?after=`. */
export function lastEventId(c: Context, fromQuery: number | undefined): number | undefined {
  const header = c.req.header("last-event-id");
  if (header !== undefined && /^\d+$/.test(header.trim())) return Number(header.trim());
  return fromQuery;
}

/**
 * Bytes a stream may hold for a client that reads slower than output is produced. Past it, `output` events are
 * skipped (the next one sent says how many with `skipped`); stored events are always sent.
 */
export const MAX_QUEUED_SSE_BYTES = 1024 * 1024;

/** What {@link openStream} hands to the code that feeds a stream. */
interface StreamFeed {
  /** Sends a frame (stored events: never skipped). */
  send(text: string): void;
  /** Sends a task's output as an `output` event (no id: it is not stored), unless the client lags too far. */
  sendOutput(event: OutputEvent): void;
  /** Ends the stream. */
  end(): void;
  /** True once the stream ended. */
  readonly ended: boolean;
}

/**
 * An SSE response fed by `start`: a `retry` hint first, keep-alive comments every `server.sseHeartbeatMs`,
 * bounded memory for slow clients (see {@link MAX_QUEUED_SSE_BYTES}); `start` returns its cleanup, called once
 * when the stream ends or the client goes away.
 */
function openStream(c: Context, host: AgentHost, start: (feed: StreamFeed) => () => void): Response {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true;
        let skipped = 0;
        const send = (text: string) => {
          if (open) controller.enqueue(encoder.encode(text));
        };
        const feed: StreamFeed = {
          send,
          sendOutput(event) {
            if (!open) return;
            if ((controller.desiredSize ?? 0) <= 0) {
              skipped++;
              return;
            }
            const data = {
              taskId: event.taskId,
              seq: event.seq,
              content: event.content,
              at: new Date(event.atMs).toISOString(),
              ...(skipped > 0 ? { skipped } : {}),
            };
            skipped = 0;
            send(sseFrame({ event: "output", data }));
          },
          end() {
            if (!open) return;
            open = false;
            cleanup();
            controller.close();
          },
          get ended() {
            return !open;
          },
        };
        const heartbeat = setInterval(() => send(": keep-alive\n\n"), host.config.server.sseHeartbeatMs);
        heartbeat.unref();
        const onAbort = () => feed.end();
        let stop = () => {};
        cleanup = () => {
          clearInterval(heartbeat);
          stop();
          c.req.raw.signal.removeEventListener("abort", onAbort);
        };
        c.req.raw.signal.addEventListener("abort", onAbort, { once: true });
        send("retry: 2000\n\n");
        stop = start(feed);
        if (!open) stop();
      },
      cancel() {
        cleanup();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: MAX_QUEUED_SSE_BYTES }),
  );
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    },
  });
}

/**
 * A session's event stream: a `session` snapshot (without `afterId`) or the stored events after `afterId`, then
 * live events (stored, so already redacted) and the `output` of its running tasks (live only, never replayed),
 * keep-alive comments every `server.sseHeartbeatMs`; it ends when the session closes, the host shuts down or
 * the client goes away.
 */
export function eventStream(
  c: Context,
  host: AgentHost,
  sessionId: string,
  afterId: number | undefined,
): Response {
  return openStream(c, host, (feed) => {
    let lastId = afterId ?? 0;
    const deliver = (event: HostEvent) => {
      if (event.id <= lastId) return;
      lastId = event.id;
      feed.send(
        sseFrame({
          id: event.id,
          event: event.type,
          data: { ...event.data, at: new Date(event.atMs).toISOString() },
        }),
      );
    };
    const sub = host.subscribe(
      sessionId,
      afterId,
      (event) => {
        if (event === null) feed.end();
        else deliver(event);
      },
      { onOutput: (event) => feed.sendOutput(event) },
    );
    if (afterId === undefined)
      feed.send(sseFrame({ event: "session", data: { session: host.getSession(sessionId) } }));
    for (const event of sub.backlog) deliver(event);
    // A closed session has nothing more to say: replay, then end.
    if (host.getSession(sessionId).status === "closed") feed.end();
    return sub.unsubscribe;
  });
}

/**
 * One task's event stream: a `task` snapshot, then (while it runs) its latest output kept in memory and its new
 * `output` events, each change as a `task` event, and the end once it finished (after the final `task`, which
 * holds the observation). A finished task's stream is its snapshot only.
 */
export function taskEventStream(c: Context, host: AgentHost, taskId: string): Response {
  return openStream(c, host, (feed) => {
    const now = () => new Date().toISOString();
    const follow = host.followTask(taskId, (event) => {
      if (event === null) feed.end();
      else if (event.type === "output") feed.sendOutput(event.output);
      else feed.send(sseFrame({ event: "task", data: { task: event.task, at: now() } }));
    });
    feed.send(sseFrame({ event: "task", data: { task: follow.task, at: now() } }));
    for (const output of follow.output) feed.sendOutput(output);
    if (follow.task.status !== "queued" && follow.task.status !== "running") feed.end();
    return follow.unsubscribe;
  });
}
