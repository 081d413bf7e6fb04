import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** CPU and wall time of one timed step. */
export interface Timing {
  wallMs: number;
  cpuMs: number;
}

/**
 * Runs `step` repeatedly for about `budgetMs` of wall time (at least once) and returns
 * the iterations and the time they took. CPU time is this process's user plus system
 * time, so with one busy thread `cpuMs` close to `wallMs` means one core was busy.
 */
export function timeLoop(step: () => void, budgetMs: number): Timing & { iterations: number } {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let iterations = 0;
  do {
    step();
    iterations += 1;
  } while (performance.now() - start < budgetMs);
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return { iterations, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Returns the given quantile (0 to 1) of the values, nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Prints one result line as JSON, for docs/benchmarks.md and for scripts. */
export function report(benchmark: string, figures: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ benchmark, ...figures })}\n`);
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User plus system CPU seconds from a Linux stat file: `/proc/PID/stat` for a process,
 * `/proc/PID/task/TID/stat` for one of its threads.
 */
export function statCpuSeconds(statFile: string): number {
  // utime and stime, the 14th and 15th fields, counted after the parenthesized name.
  const fields = fs.readFileSync(statFile, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Returns the CPU seconds of a process's threads by thread name, the main thread apart as
 * `main`. Threads that exited are left out, so the sum can be below the process's time.
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name =
        Number(task) === pid
          ? 'main'
          : fs.readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim();
      const seconds = statCpuSeconds(`/proc/${pid}/task/${task}/stat`);
      byName.set(name, (byName.get(name) ?? 0) + seconds);
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return byName;
}
