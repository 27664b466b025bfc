import type { Logger } from "@agent-runtime/runtime-core";
import { bindingLabel } from "./budgets.js";
import { formatUsd } from "./errors.js";

/** Something that happened in enforcement, for hosts to show or alert on (also logged). */
export type CostEvent =
  | {
      type: "warning";
      budget: string;
      scopeKey: string;
      periodKey: string;
      percent: number;
      spentUsd: number;
      limitUsd: number;
    }
  | {
      type: "terminate";
      leaseId: string;
      sandboxId?: string;
      cause: "idle" | "budget";
      reason: string;
      /** False when no terminate hook or inventory could stop the sandbox. */
      terminated: boolean;
    }
  | { type: "overrun"; leaseId: string; overrunMs: number }
  | { type: "orphan"; sandboxId: string; leaseId: string; reason: string };

/** A budget threshold crossed. */
export type WarningEvent = Extract<CostEvent, { type: "warning" }>;

/** Delivers {@link CostEvent}s to the host's listener; a listener that throws is logged, never propagated. */
export class CostEvents {
  readonly #logger: Logger;
  readonly #listener: ((event: CostEvent) => void) | undefined;

  constructor(logger: Logger, listener: ((event: CostEvent) => void) | undefined) {
    this.#logger = logger;
    this.#listener = listener;
  }

  /** Sends an event to the listener. */
  emit(event: CostEvent): void {
    try {
      this.#listener?.(event);
    } catch (err) {
      this.#logger.error("cost-guard onEvent listener threw", { error: (err as Error).message });
    }
  }

  /** Logs a crossed threshold as a warning and sends it to the listener. */
  warning(w: WarningEvent): void {
    this.#logger.warn(
      `Budget "${w.budget}" (${bindingLabel(w)}) reached ${w.percent}%: spent ${formatUsd(w.spentUsd)} of ${formatUsd(w.limitUsd)}.`,
      { ...w },
    );
    this.emit(w);
  }
}
