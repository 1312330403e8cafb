import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import { EipStatus, type Eip, type EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import type { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { UUID_PATTERN } from "@stratum/validation";

const CALL_TIMEOUT_MS = 15_000;
/** How often an attach is looked at until its rule is on the agent (the EIP has no watch). */
const EIP_POLL_MS = 50;

/**
 * Network as a provision uses it: the broker's networks (named in its settings, looked up once),
 * and an elastic IP for a VM: created, attached, followed until Active, deleted.
 */
export class NetworkClient {
  readonly #resolved = new Map<string, Promise<string>>();

  constructor(
    private readonly networks: ServiceRouter<typeof NetworkService>,
    private readonly eips: ServiceRouter<typeof EipService>,
  ) {}

  /** The UUID of an L3 network named by UUID or by name; FAILED_PRECONDITION naming it when there is none. */
  network(nameOrUuid: string, isPublic: boolean): Promise<string> {
    const key = `${isPublic}/${nameOrUuid}`;
    let found = this.#resolved.get(key);
    if (!found) {
      found = this.#lookup(nameOrUuid, isPublic);
      this.#resolved.set(key, found);
      // A failed lookup (no such network yet, network service down) is asked again next time.
      found.catch(() => this.#resolved.delete(key));
    }
    return found;
  }

  async #lookup(nameOrUuid: string, isPublic: boolean): Promise<string> {
    if (UUID_PATTERN.test(nameOrUuid)) return nameOrUuid;
    let pageToken = "";
    do {
      const page = await this.networks.call(nameOrUuid, (c) => c.listL3Networks({ public: isPublic, pageSize: 1000, pageToken }, { timeoutMs: CALL_TIMEOUT_MS }));
      const hit = page.l3Networks.find((n) => n.name === nameOrUuid);
      if (hit) return hit.uuid;
      pageToken = page.nextPageToken;
    } while (pageToken);
    throw new StratumError(Code.FAILED_PRECONDITION, `the broker's ${isPublic ? "public" : "private"} network ${JSON.stringify(nameOrUuid)} does not exist`, {
      reason: "BROKER_NETWORK_MISSING",
      resources: { l3Network: nameOrUuid },
    });
  }

  async createEip(uuid: string, name: string, l3NetworkUuid: string): Promise<Eip> {
    const { eip } = await this.eips.call(uuid, (c) => c.createEip({ uuid, name, l3NetworkUuid, clientRequestId: `broker-eip-${uuid}` }, { timeoutMs: CALL_TIMEOUT_MS }));
    return eip!;
  }

  async attach(uuid: string, vmNicUuid: string): Promise<Eip> {
    const { eip } = await this.eips.call(uuid, (c) => c.attachEip({ uuid, vmNicUuid, clientRequestId: `broker-attach-${uuid}-${vmNicUuid}` }, { timeoutMs: CALL_TIMEOUT_MS }));
    return eip!;
  }

  /** Follows the EIP until its rule is on the agent (Active); fails naming the reason when it is in Error. */
  async untilActive(uuid: string, signal: AbortSignal, timeoutMs = 60_000): Promise<Eip> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal.throwIfAborted();
      const { eip } = await this.eips.call(uuid, (c) => c.getEip({ uuid }, { timeoutMs: CALL_TIMEOUT_MS, signal }));
      if (eip!.status === EipStatus.ACTIVE) return eip!;
      if (eip!.status === EipStatus.DETACHED) {
        throw new StratumError(Code.ABORTED, `elastic IP ${uuid} was detached while it was being applied: ${eip!.statusReason || "no reason given"}`, { reason: "EIP_APPLY_FAILED", resources: { eipUuid: uuid } });
      }
      if (Date.now() > deadline) {
        throw new StratumError(Code.DEADLINE_EXCEEDED, `elastic IP ${uuid} was not active after ${timeoutMs} ms (${EipStatus[eip!.status]}${eip!.statusReason ? `: ${eip!.statusReason}` : ""})`, {
          reason: "EIP_APPLY_TIMEOUT",
          resources: { eipUuid: uuid },
        });
      }
      await new Promise((r) => setTimeout(r, EIP_POLL_MS));
    }
  }

  /** Deletes the EIP (detaching it first); false when network has no such EIP. */
  async deleteEip(uuid: string): Promise<boolean> {
    try {
      await this.eips.call(uuid, (c) => c.deleteEip({ uuid, clientRequestId: `broker-delete-${uuid}` }, { timeoutMs: CALL_TIMEOUT_MS }));
      return true;
    } catch (e) {
      if (StratumError.from(e).code === Code.NOT_FOUND) return false;
      throw e;
    }
  }
}
