import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU-seconds from /proc (Linux), so a benchmark charges each part of the devstack its own cost
 * rather than inferring it from throughput, which the machine's noise hides.
 */

/** CPU-seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks; USER_HZ is 100 on Linux
}

/**
 * CPU-seconds of a process and its live children: PostgreSQL does its work in one backend
 * process per connection, which the postmaster's own figure does not include until they exit.
 * The backends of a pooled service live for the whole run, so a difference of two readings is
 * the work done between them.
 */
export function treeCpuSeconds(pid: number): number {
  let sum = cpuSeconds(pid);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === pid) sum += (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return sum;
}
