/** Simulated command execution time: a default plus per-command overrides (`vm/migrate: 2000`). */
export interface LatencyConfig {
  defaultMs?: number;
  commands?: Record<string, number>;
}

/**
 * The latency of `command` on a host. The host's own settings win over the sim-wide ones (so
 * "make host 3 slow" is one call), and within each level a per-command value wins over the
 * default: host command > host default > global command > global default > 0.
 */
export function resolveLatency(command: string, host: LatencyConfig, global: LatencyConfig): number {
  return host.commands?.[command] ?? host.defaultMs ?? global.commands?.[command] ?? global.defaultMs ?? 0;
}

export function mergeLatency(base: LatencyConfig, patch: LatencyConfig): LatencyConfig {
  const commands = { ...base.commands, ...patch.commands };
  const merged: LatencyConfig = { commands };
  const defaultMs = patch.defaultMs ?? base.defaultMs;
  if (defaultMs !== undefined) merged.defaultMs = defaultMs;
  return merged;
}
