/**
 * Argument checks shared by the ring's public methods. They run before any state is touched, so
 * a rejected call leaves the ring — and its epoch — exactly as it was: a replica that feeds the
 * ring a corrupt membership record must get an error, not a silently different ownership map.
 */

/** Upper bound on the virtual nodes of one node: stops a fat-fingered weight from eating the heap. */
export const MAX_NODE_VNODES = 1 << 20;

/** Upper bound on the node count; the bulk rebuild packs a node's rank into 21 bits. */
export const MAX_NODES = 1 << 21;

export function assertNodeId(node: unknown, name = "node"): asserts node is string {
  if (typeof node !== "string") {
    throw new TypeError(`${name} must be a string, got ${describe(node)}`);
  }
  if (node.length === 0) {
    throw new RangeError(`${name} must be a non-empty string`);
  }
}

export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== "string") {
    throw new TypeError(`key must be a string, got ${describe(key)}`);
  }
}

export function assertWeight(weight: unknown, name = "weight"): asserts weight is number {
  if (typeof weight !== "number") {
    throw new TypeError(`${name} must be a number, got ${describe(weight)}`);
  }
  if (!Number.isFinite(weight) || weight <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${weight}`);
  }
}

export function assertPositiveInteger(value: unknown, name: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value;
}
