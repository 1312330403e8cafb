export { connectBus, DEFAULT_CONNECT_TIMEOUT_MS } from "./connect";
export type { Bus, BusOptions } from "./connect";
export { EventBus, REQUEST_ID_HEADER } from "./events";
export type { DomainEvent, EventStreamOptions, PublishOptions } from "./events";
export { ReplyInbox, publishReply, REPLY_DEFAULTS } from "./replies";
export type { ReplyResult, UnclaimedReply } from "./replies";
export { Membership, MembershipView, DEFAULT_HEARTBEAT_MS } from "./membership";
export type { Member, MembershipChange, MembershipOptions } from "./membership";
export { ServiceRouter, ServiceRouters, ownerRouting, withoutAddresses, FORWARDED_BY_KEY, NOT_OWNER, OWNER_UNREACHABLE } from "./routing";
