import { spawn } from "node:child_process";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { RuntimeError } from "@agent-runtime/runtime-core";
import { NAT_NAMESERVER } from "./nat-network.js";
import { which } from "./sandbox-process.js";

/** An allow-list entry: an IPv4/IPv6 address or CIDR, or a host name resolved when the sandbox starts. */
export const ALLOW_ENTRY =
  /^(?:[0-9a-fA-F.:]+(?:\/\d{1,3})?|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*)$/;

/** Why an allow-list cannot be enforced here, or undefined when it can. */
export function allowListUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return "it needs the host to run as root (to program the sandbox's firewall)";
  if (!which("nft")) return "nftables is not installed (apt-get install nftables)";
  if (!which("nsenter")) return "nsenter (util-linux) is not installed";
  return undefined;
}

/** Splits entries into IPv4 and IPv6 addresses or CIDRs, resolving host names (every address they have). */
export async function resolveAllowList(entries: readonly string[]): Promise<{ v4: string[]; v6: string[] }> {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const entry of entries) {
    const [address, prefix] = entry.split("/") as [string, string | undefined];
    const family = isIP(address);
    if (family !== 0) {
      const max = family === 4 ? 32 : 128;
      if (prefix !== undefined && !(Number(prefix) >= 0 && Number(prefix) <= max)) {
        throw new RuntimeError(
          "INVALID_ARGUMENT",
          `network.allow: "${entry}" has a prefix length outside 0..${max}; write an address or a CIDR such as 10.1.0.0/16.`,
        );
      }
      (family === 4 ? v4 : v6).add(entry);
      continue;
    }
    let found: { address: string; family: number }[];
    try {
      found = await lookup(entry, { all: true });
    } catch (err) {
      throw new RuntimeError(
        "INVALID_ARGUMENT",
        `network.allow: the host name "${entry}" does not resolve here (${(err as NodeJS.ErrnoException).code ?? "error"}); fix the name or allow its addresses.`,
        { cause: err },
      );
    }
    for (const a of found) (a.family === 4 ? v4 : v6).add(a.address);
  }
  return { v4: [...v4], v6: [...v6] };
}

/** The nftables ruleset: loopback, replies, DNS to the NAT's resolver, the allowed addresses; the rest refused. */
export function allowListRuleset(allowed: { v4: string[]; v6: string[] }): string {
  const lines = [
    "table inet agent_runtime {",
    "  chain output {",
    "    type filter hook output priority 0; policy drop;",
    '    oifname "lo" accept',
    "    ct state established,related accept",
    `    ip daddr ${NAT_NAMESERVER} udp dport 53 accept`,
    `    ip daddr ${NAT_NAMESERVER} tcp dport 53 accept`,
  ];
  if (allowed.v4.length > 0) lines.push(`    ip daddr { ${allowed.v4.join(", ")} } accept`);
  if (allowed.v6.length > 0) lines.push(`    ip6 daddr { ${allowed.v6.join(", ")} } accept`);
  lines.push("    reject with icmpx type admin-prohibited", "  }", "}");
  return `${lines.join("\n")}\n`;
}

/**
 * Programs the firewall of the sandbox's network namespace (the sandbox itself has no capability to change
 * it) so only the allowed addresses are reachable. Runs before the NAT is attached, so no packet leaves
 * unfiltered.
 */
export async function applyAllowList(initPid: number, entries: readonly string[]): Promise<void> {
  const ruleset = allowListRuleset(await resolveAllowList(entries));
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      which("nsenter") ?? "nsenter",
      [`--target=${initPid}`, "--net", "--", which("nft") ?? "nft", "-f", "-"],
      {
        stdio: ["pipe", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", (err) =>
      reject(
        new RuntimeError("UNAVAILABLE", `network.allow: nft could not run: ${err.message}`, { cause: err }),
      ),
    );
    child.on("close", (code) => {
      if (code === 0) resolve();
      else
        reject(
          new RuntimeError(
            "UNAVAILABLE",
            `network.allow: nft refused the sandbox's firewall (exit ${code}): ${stderr.trim()}`,
          ),
        );
    });
    child.stdin.end(ruleset);
  });
}
