import { formatUsd } from "@agent-runtime/cost-guard";
import type { ComposedPlugins } from "../compose.js";

export { formatUsd };

/** Settled cost of one session's sandboxes in USD, from the cost plugin's report (0 when it has none). */
export function sessionCost(plugins: ComposedPlugins, sessionId: string): number {
  const rows = plugins.cost?.report?.({ by: "session" }) ?? [];
  return rows.find((r) => r.key === sessionId)?.costUsd ?? 0;
}

/** Lines summarising spend and budgets for the CLI. */
export function costSummaryLines(plugins: ComposedPlugins, sessionIds: readonly string[]): string[] {
  if (!plugins.cost) return ["Cost: not tracked (cost.enabled is false)."];
  const total = sessionIds.reduce((sum, id) => sum + sessionCost(plugins, id), 0);
  const lines = [
    `Cost: ${formatUsd(total)} (${plugins.costPlugin}, ${sessionIds.length} sandbox${sessionIds.length === 1 ? "" : "es"})`,
  ];
  for (const b of plugins.cost.budgetStatus?.() ?? []) {
    lines.push(
      `  budget ${b.budget} (${b.scope}, ${b.period}): ${formatUsd(b.spentUsd)} spent of ${formatUsd(b.limitUsd)}, ${b.usedPercent.toFixed(1)}% used`,
    );
  }
  return lines;
}
