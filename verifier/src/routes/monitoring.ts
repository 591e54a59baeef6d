import type { HttpServer } from '../../../common/src/http.ts';
import { type Gauge, PROMETHEUS_CONTENT_TYPE, prometheusText } from '../../../common/src/metrics.ts';
import { OpenApiContract } from '../../../common/src/openapi.ts';
import type { components } from '../../../openapi/generated/verifier.ts';
import type { AlertOutbox } from '../alerts.ts';
import type { BulkJobs } from '../bulk-jobs.ts';
import { EvidenceNotWitnessed } from '../errors.ts';
import type { LogWitness } from '../log-witness.ts';
import type { Replica } from '../replica.ts';
import type { Replicator } from '../replication.ts';
import type { StateChanges } from '../state-changes.ts';

/** The contract's `Health`, with the counts this node always gives. */
type Health = components['schemas']['Health'] & { changesPending: number; deadLetters: number };

const contract = new OpenApiContract(new URL('../../../openapi/verifier.yaml', import.meta.url).pathname);

export interface MonitoringRoutesOptions {
  market: string;
  nodeId: string;
  replica: Replica;
  replicator: Replicator;
  alerts: AlertOutbox;
  stateChanges: StateChanges;
  bulkJobs: BulkJobs;
  witness?: LogWitness | undefined;
  /** The node's certificate chain (PEM, leaf first): what pharmacies check signed answers with. */
  certPem: string;
}

/**
 * What operators and their monitoring read, without a token: `/health` (openapi/verifier.yaml
 * `Health`) and the same figures as Prometheus metrics on `/metrics`; and the node's certificate
 * chain (`/v1/node/certificate`), public as its TLS handshake, for checking signed answers later.
 */
export async function monitoringRoutes(app: HttpServer, options: MonitoringRoutesOptions): Promise<void> {
  const health = (): Health => {
    const { replica, replicator, alerts, stateChanges } = options;
    const s = replicator.status;
    return {
      status: s.state,
      serving: replicator.serving,
      market: options.market,
      nodeId: options.nodeId,
      appliedSeq: s.appliedSeq,
      hubSeq: Math.max(s.hubSeq, s.appliedSeq),
      lag: Math.max(0, s.hubSeq - s.appliedSeq),
      packs: replica.packCount(),
      alertsPending: alerts.pending(),
      changesPending: stateChanges.pending(),
      bulkJobsUnfinished: options.bulkJobs.unfinished(),
      deadLetters: alerts.deadLetters() + stateChanges.deadLetters(),
      ...(s.lastError ? { lastError: s.lastError } : {}),
    };
  };

  app.get('/health', { schema: contract.routeSchema('getHealth') }, async () => health());
  // Public like a transparency log's checkpoints: a signed note of hashes, for auditors who hold
  // the hub's evidence log to it (docs/operations.md, "Evidence").
  app.get('/v1/evidence/checkpoint', async (_req, reply) => {
    const note = options.witness ? options.replica.witnessedCheckpoint() : undefined;
    if (!note) throw new EvidenceNotWitnessed('This node has witnessed no checkpoint of the hub evidence log');
    return reply.type('text/plain; charset=utf-8').send(note);
  });
  app.get('/v1/node/certificate', async (_req, reply) =>
    reply.type('application/pem-certificate-chain').send(options.certPem),
  );
  app.get('/metrics', async (_req, reply) => {
    const deadLetters = { event: options.stateChanges.deadLettersByCode(), alert: options.alerts.deadLettersByCode() };
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(prometheusText(gauges(health(), deadLetters, options)));
  });
}

/** The health figures as Prometheus gauges (common/src/metrics.ts adds the process's memory). */
function gauges(
  h: Health,
  deadLetters: Record<'event' | 'alert', ReadonlyMap<string, number>>,
  options: Pick<MonitoringRoutesOptions, 'witness'>,
): Gauge[] {
  const labels = { market: h.market, node: h.nodeId };
  const gauge = (name: string, help: string, value: number): Gauge => ({ name, help, value, labels });
  return [
    gauge('packtrust_feed_applied_seq', 'Last feed record applied to the replica.', h.appliedSeq),
    gauge('packtrust_feed_hub_seq', 'Newest feed record the hub reported.', h.hubSeq),
    gauge('packtrust_replication_lag_records', 'Feed records not applied yet.', h.lag),
    gauge('packtrust_replica_packs', 'Packs in the replica.', h.packs),
    gauge(
      'packtrust_serving',
      'Whether the node answers (1), or not (0: resynchronising, or its certificate refused).',
      h.serving ? 1 : 0,
    ),
    gauge('packtrust_alerts_pending', 'Alerts waiting to be delivered to the hub.', h.alertsPending),
    gauge('packtrust_changes_pending', 'State changes waiting for the hub (offline mode).', h.changesPending),
    gauge('packtrust_bulk_jobs_unfinished', 'Bulk jobs queued or being decided.', h.bulkJobsUnfinished ?? 0),
    gauge(
      'packtrust_dead_letters',
      'Alerts and state changes the hub refused for good (see the node log).',
      h.deadLetters,
    ),
    gauge(
      'packtrust_evidence_witnessed_size',
      'Tree size of the newest hub evidence checkpoint this node checked and keeps.',
      options.witness?.status.witnessedSize ?? 0,
    ),
    gauge(
      'packtrust_evidence_checkpoints_refused',
      'Hub evidence checkpoints refused since the start: a bad signature, or a log that shrank or forked (see the log).',
      options.witness?.status.failures ?? 0,
    ),
    // By kind (`event`, `alert`) and the code of the hub's refusal: one sample per code seen (the
    // hub's codes, a bounded set).
    ...Object.entries(deadLetters).flatMap(([kind, codes]) =>
      [...codes].map(([code, n]) => ({
        name: 'packtrust_dead_letters_by_code',
        help: "Dead letters by kind and by the code of the hub's refusal.",
        value: n,
        labels: { ...labels, kind, code: code.replace(/["\\\n]/g, '_') },
      })),
    ),
  ];
}
