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
