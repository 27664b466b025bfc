/**
 * Region strings Modal documents for `region` (a sandbox's `regions`). Sources: the pricing table of
 * modal.com/docs/guide/region-selection names the broad regions ("Any region in US/EU/UK/AP", "CA/SA/ME/MX/AF");
 * the same page and Modal's region-selection launch post (modal.com/blog/region-selection-launch) name `us-east`,
 * `us-central`, `us-west`, `eu-west` and, as specific regions, `us-east-1`, `us-east-2`, `us-central1`,
 * `us-chicago-1`, `us-west-1`, `us-ashburn-1`, `eu-west-1`, `eu-paris-1`. The same list as modal-emulator's strict
 * mode (`MODAL_REGIONS` there); runtime-modal keeps its own copy because a plugin imports no other plugin.
 * The docs' full table of specific regions could not be read, so a real region may be missing here.
 */
export const MODAL_REGIONS: readonly string[] = Object.freeze([
  "us",
  "eu",
  "uk",
  "ap",
  "ca",
  "sa",
  "me",
  "mx",
  "af",
  "us-east",
  "us-central",
  "us-west",
  "eu-west",
  "us-east-1",
  "us-east-2",
  "us-central1",
  "us-chicago-1",
  "us-west-1",
  "us-ashburn-1",
  "eu-west-1",
  "eu-paris-1",
]);

/** The issue for a region Modal does not document (undefined when it does). */
export function regionIssue(region: string): string | undefined {
  if (MODAL_REGIONS.includes(region)) return undefined;
  return `unknown Modal region ${JSON.stringify(region)}; Modal's documented regions are ${MODAL_REGIONS.join(", ")} (modal.com/docs/guide/region-selection)`;
}
