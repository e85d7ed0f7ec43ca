/** Small statistics helpers for the benchmarks (all times in milliseconds). */

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** High-resolution "now" in milliseconds. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Times an async function; returns [elapsed ms, result]. */
export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const result = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, result];
}

/** Rounds for display/JSON (3 decimals = microseconds). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Runs `total` tasks with at most `concurrency` in flight; returns per-task results in
 * order. Bounded on purpose: the load generator shares two cores with everything else.
 */
export async function runBounded<T>(total: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(total);
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return results;
}

/** Keeps `concurrency` tasks in flight until `durationMs` has passed; returns completions. */
export async function runForDuration(
  durationMs: number,
  concurrency: number,
  task: (i: number) => Promise<boolean>,
): Promise<{ completed: number; ok: number; elapsedMs: number }> {
  const start = nowMs();
  const deadline = start + durationMs;
  let started = 0;
  let completed = 0;
  let ok = 0;
  const worker = async () => {
    while (nowMs() < deadline) {
      const i = started++;
      const success = await task(i);
      completed++;
      if (success) ok++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { completed, ok, elapsedMs: nowMs() - start };
}

/**
 * Like runBounded, but also bounded in time: no task is started after `deadlineMs`
 * (tasks in flight finish). `results[i]` is undefined for a task never started.
 */
export async function runBoundedUntil<T>(
  total: number,
  concurrency: number,
  deadlineMs: number,
  task: (i: number) => Promise<T>,
): Promise<{ results: Array<T | undefined>; started: number; elapsedMs: number; timedOut: boolean }> {
  const results = new Array<T | undefined>(total).fill(undefined);
  const start = nowMs();
  const deadline = start + deadlineMs;
  let next = 0;
  let timedOut = false;
  const worker = async () => {
    while (next < total) {
      if (nowMs() >= deadline) {
        timedOut = true;
        return;
      }
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return { results, started: next, elapsedMs: nowMs() - start, timedOut };
}
