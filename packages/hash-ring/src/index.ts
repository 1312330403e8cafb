export { HashRing, DEFAULT_VNODES, RING_ALGORITHM } from "./ring";
export type { AddOptions, HashRingOptions, NodeSpec } from "./ring";
export { murmur3, murmur3Bytes, murmur3Series } from "./hash";
export { MAX_NODES, MAX_NODE_VNODES } from "./validate";
