/**
 * Operators' metrics in the Prometheus text exposition format (version 0.0.4): gauges only, each
 * with its HELP and TYPE lines, then the process's memory. What a service measures, and who may
 * read it, is the service's (the gateway's and the CA's `/metrics` are for operators only).
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4';

export interface Gauge {
  /** `packtrust_…`, snake case. */
  name: string;
  /** One sentence, ending with a full stop. */
  help: string;
  value: number;
  /** Label values, already free of quotes and backslashes (market codes, node ids). */
  labels?: Record<string, string>;
}

/** The gauges, then `process_resident_memory_bytes` and `nodejs_heap_used_bytes`. */
export function prometheusText(gauges: readonly Gauge[]): string {
  const memory = process.memoryUsage();
  return [
    ...gauges,
    { name: 'process_resident_memory_bytes', help: 'Resident memory of the process.', value: memory.rss },
    { name: 'nodejs_heap_used_bytes', help: 'V8 heap in use.', value: memory.heapUsed },
  ]
    .map((g) => {
      const labels = Object.entries(g.labels ?? {}).map(([k, v]) => `${k}="${v}"`);
      const series = `${g.name}${labels.length > 0 ? `{${labels.join(',')}}` : ''}`;
      return `# HELP ${g.name} ${g.help}\n# TYPE ${g.name} gauge\n${series} ${g.value}\n`;
    })
    .join('');
}
