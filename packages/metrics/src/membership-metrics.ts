import { Gauge, type Registry } from "prom-client";
import type { MembershipView } from "@stratum/bus";

/** What the membership gauges read of a view. */
export type MembershipSource = Pick<MembershipView, "members" | "epoch" | "onChange">;

/**
 * Registers ring gauges computed at scrape time from `view`: for each service in `services`, and
 * each service the view later reports a change of, its ring epoch and live replica count. Two
 * replicas disagreeing on a ring's epoch for long is a split view (they route differently).
 * Returns the function that stops listening to the view.
 */
export function membershipMetrics(registry: Registry, view: MembershipSource, services: readonly string[]): () => void {
  const rings = new Set(services);
  const off = view.onChange((change) => rings.add(change.service));
  const registers = [registry];
  new Gauge({
    name: "stratum_membership_ring_epoch",
    help: "Epoch of a service's hash ring as this replica sees it (changes with every change of its live set).",
    labelNames: ["ring"],
    registers,
    collect() {
      for (const ring of rings) this.set({ ring }, view.epoch(ring));
    },
  });
  new Gauge({
    name: "stratum_membership_live_replicas",
    help: "Live replicas of a service as this replica sees them.",
    labelNames: ["ring"],
    registers,
    collect() {
      for (const ring of rings) this.set({ ring }, view.members(ring).length);
    },
  });
  return off;
}
