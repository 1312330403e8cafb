import type { Membership, MembershipView } from "@stratum/bus";

/**
 * A replica's place among its service's replicas, as the domain needs it for takeover: which
 * resources it owns, which incarnation of it is writing (`<replicaId>@<startedAt>`: a restart is a
 * new one), whether the incarnation recorded on a resource is still alive, and ring changes.
 */
export interface Ownership {
  owns(resourceUuid: string): boolean;
  /** This incarnation, to record as the actor of a change (see compute's `vms.last_actor`). */
  incarnation(): string;
  /** True when `incarnation` is a live replica of this service. */
  isLive(incarnation: string): boolean;
  /** Calls `fn` on every change of this service's ring; returns what stops it. */
  onChange(fn: () => void): () => void;
}

export function ownershipOf(service: string, replicaId: string, startedAt: number, view: MembershipView, membership: () => Membership | undefined): Ownership {
  const name = (m: { replicaId: string; startedAt: number }) => `${m.replicaId}@${m.startedAt}`;
  const self = name({ replicaId, startedAt });
  return {
    owns: (uuid) => membership()?.owns(uuid) ?? false,
    // Also its lease's holder (see LeaseKeeper): fixed before the replica writes anything.
    incarnation: () => self,
    // Draining replicas included: one that is stopping still finishes what it started.
    isLive: (incarnation) => view.alive(service).some((m) => name(m) === incarnation),
    onChange: (fn) => view.onChange((change) => void (change.service === service && fn())),
  };
}
