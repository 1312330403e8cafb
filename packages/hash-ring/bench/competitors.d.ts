// Types for the two npm rings the benchmark compares against; neither ships its own.
// Only what the benchmark calls is declared, as read from their sources in node_modules.

declare module "hashring" {
  interface HashRingOptions {
    /** Hashes per server before `replicas` points are cut from each (default 40). */
    "vnode count"?: number;
    /** Points cut from each md5 digest (default 4: 40 × 4 = 160 points per server). */
    replicas?: number;
    /** Size of the LRU cache of key -> server (default 5000). */
    "max cache size"?: number;
    compatibility?: "ketama" | "hash_ring";
    "default port"?: number;
  }

  type Servers = string | string[] | Record<string, number | { weight?: number; vnodes?: number }>;

  /** Ketama-compatible ring (md5, libketama layout) with an LRU cache in front of `get`. */
  class HashRing {
    constructor(servers?: Servers, algorithm?: string | ((key: string) => Uint8Array | string), options?: HashRingOptions);
    get(key: string): string | undefined;
    range(key: string, size?: number, unique?: boolean): string[];
    add(servers: Servers): this;
    remove(server: string): this;
    has(server: string): boolean;
    end(): this;
  }

  export = HashRing;
}

declare module "consistent-hash" {
  interface ConsistentHashOptions {
    /** Modulus of the ring positions (default 100003). */
    range?: number;
    /** Control points per node (default 40). */
    weight?: number;
    controlPoints?: number;
    distribution?: "random" | "uniform";
  }

  /** PJW-hash ring whose control points are drawn with Math.random (random distribution). */
  class ConsistentHash<T = string> {
    constructor(options?: ConsistentHashOptions);
    nodeCount: number;
    keyCount: number;
    add(node: T, weight?: number, points?: number[]): this;
    remove(node: T): this;
    get(name: string): T | null;
    get(name: string, count: number): T[] | null;
    getNodes(): T[];
  }

  export = ConsistentHash;
}
