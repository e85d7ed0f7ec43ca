/**
 * CPU accounting from /proc (Linux): machine-wide busy time and the time of the
 * processes involved (this Node process — load generator and provider fakes —, the
 * Deno functions host, and every postgres process), so a throughput number comes
 * with a note on what saturated.
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface Snapshot {
  at: number;
  totalTicks: number;
  idleTicks: number;
  groups: Record<string, number>;
}

function machineTicks(): { total: number; idle: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = values[3] + (values[4] ?? 0); // idle + iowait
  return { total: values.reduce((a, b) => a + b, 0), idle };
}

function processTicks(pid: number): { comm: string; ppid: number; ticks: number; cmdline: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      // gone or not readable
    }
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // fields[0] = state (field 3); utime = field 14, stime = field 15
    return { comm, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), cmdline };
  } catch {
    return undefined;
  }
}

function snapshot(database: string): Snapshot {
  const groups: Record<string, number> = { node: 0, deno: 0, postgres: 0, postgresOther: 0 };
  const all = new Map<number, { comm: string; ppid: number; ticks: number; cmdline: string }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processTicks(Number(entry));
    if (info) all.set(Number(entry), info);
  }
  for (const [pid, info] of all) {
    if (pid === process.pid) groups.node += info.ticks;
    else if (info.comm === "deno" && info.ppid === process.pid) groups.deno += info.ticks;
    // Backends carry their database in the process title: "postgres: 15/main: user db host(port) state".
    else if (info.comm === "postgres" || info.comm.startsWith("postgres")) {
      if (info.cmdline.includes(` ${database} `)) groups.postgres += info.ticks;
      else groups.postgresOther += info.ticks;
    }
  }
  const m = machineTicks();
  return { at: Date.now(), totalTicks: m.total, idleTicks: m.idle, groups };
}

export interface CpuReport {
  cores: number;
  seconds: number;
  /** Busy share of the whole machine, 0-100 % (100 % = every core busy). */
  machineBusyPct: number;
  /**
   * Per group, share of ONE core (a process using both cores fully shows 200 %):
   * node = this process (load generator + provider fakes), deno = the functions host(s)
   * we started, postgres = backends of the bench database, postgresOther = the server's
   * other processes, others = everything else on the machine (other tenants).
   */
  processPct: Record<string, number>;
}

export function cpuMeter(database: string): { stop(): CpuReport } {
  const start = snapshot(database);
  return {
    stop() {
      const end = snapshot(database);
      const seconds = (end.at - start.at) / 1000;
      const total = end.totalTicks - start.totalTicks;
      const idle = end.idleTicks - start.idleTicks;
      const processPct: Record<string, number> = {};
      for (const key of Object.keys(end.groups)) {
        processPct[key] = Math.round(((end.groups[key] - (start.groups[key] ?? 0)) / TICKS_PER_SECOND / seconds) * 100);
      }
      const ours = Object.values(processPct).reduce((a, b) => a + b, 0);
      const busyPctOfOneCore = total > 0 ? ((total - idle) / total) * 100 * cpus().length : 0;
      processPct.others = Math.max(0, Math.round(busyPctOfOneCore - ours));
      return {
        cores: cpus().length,
        seconds: Math.round(seconds * 10) / 10,
        machineBusyPct: total > 0 ? Math.round(((total - idle) / total) * 100) : 0,
        processPct,
      };
    },
  };
}
