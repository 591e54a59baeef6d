import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** Writes a benchmark's figures to bench/results/<name>.json (kept out of git). */
export function writeBenchResults(name: string, results: unknown): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote bench/results/${name}.json`);
}

/** Count, rate and latency percentiles of a timed load run, as the load generators print them. */
export function latencySummary(latenciesMs: number[], errors: number, elapsedSeconds: number) {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
  return { count: sorted.length, errors, perSecond: sorted.length / elapsedSeconds, p50ms: pct(0.5), p99ms: pct(0.99) };
}
