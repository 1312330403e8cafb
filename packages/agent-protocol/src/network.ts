/** vNIC and elastic-IP rules on a host. */

export interface NicApplyRequest {
  nicUuid: string;
  vmUuid: string;
  mac?: string;
  ip?: string;
  l3NetworkUuid?: string;
}

export interface NicApplyReply {
  nicUuid: string;
  vmUuid: string;
  applied: true;
}

export interface NicReleaseRequest {
  nicUuid: string;
}

export interface NicReleaseReply {
  nicUuid: string;
  released: true;
  /** False when the vNIC was already gone (release succeeds anyway). */
  found: boolean;
}

export interface EipApplyRequest {
  eipUuid: string;
  vip: string;
  guestIp: string;
  nicUuid: string;
  vmUuid?: string;
}

export interface EipApplyReply {
  eipUuid: string;
  applied: true;
}

export interface EipReleaseRequest {
  eipUuid: string;
}

export interface EipReleaseReply {
  eipUuid: string;
  released: true;
  found: boolean;
}

/**
 * `eip/list`: the elastic-IP rules the host has applied, all of them or those of one VM. What the
 * management plane compares with its database when a host reconnects: a restarted host may have
 * lost rules (a flushed NAT table) or kept some the database no longer has.
 */
export interface EipListRequest {
  /** Only the rules applied with this `vmUuid` (a rule applied without one never matches). */
  vmUuid?: string;
}

/** One applied elastic-IP rule, as `eip/apply` set it. */
export interface EipRuleInfo {
  eipUuid: string;
  vip: string;
  guestIp: string;
  nicUuid: string;
  vmUuid?: string;
}

export interface EipListReply {
  eips: EipRuleInfo[];
}
