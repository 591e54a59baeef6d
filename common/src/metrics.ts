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

/**
 * The gauges, then `process_resident_memory_bytes` and `nodejs_heap_used_bytes`. Gauges of one
 * name are one family: its HELP and TYPE lines come once, before all its samples (the format
 * refuses them twice).
 */
export function prometheusText(gauges: readonly Gauge[]): string {
  const memory = process.memoryUsage();
  const families = new Map<string, Gauge[]>();
  for (const g of [
    ...gauges,
    { name: 'process_resident_memory_bytes', help: 'Resident memory of the process.', value: memory.rss },
    { name: 'nodejs_heap_used_bytes', help: 'V8 heap in use.', value: memory.heapUsed },
  ]) {
    families.set(g.name, [...(families.get(g.name) ?? []), g]);
  }
  let text = '';
  for (const [name, family] of families) {
    text += `# HELP ${name} ${family[0]!.help}\n# TYPE ${name} gauge\n`;
    for (const g of family) {
      const labels = Object.entries(g.labels ?? {}).map(([k, v]) => `${k}="${v}"`);
      text += `${name}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${g.value}\n`;
    }
  }
  return text;
}
