import { join } from 'node:path';
import { type HttpTimeouts, listen } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { Store } from '../../common/src/store.ts';
import { AlertOutbox } from './alerts.ts';
import { BulkJobs } from './bulk-jobs.ts';
import {
  DEFAULT_ALERT_WINDOW_MS,
  DEFAULT_BULK_MAX_JOBS_PER_CLIENT,
  DEFAULT_BULK_SYNC_MAX_PACKS,
  DEFAULT_FEED_PAGE_SIZE,
  DEFAULT_FEED_WAIT_MS,
  DEFAULT_HUB_DEADLINE_MS,
} from './config.ts';
import { HubClient } from './hub-client.ts';
import { LogWitness } from './log-witness.ts';
import { Replica } from './replica.ts';
import { Replicator } from './replication.ts';
import { createVerifierServer } from './server.ts';
import { StateChanges } from './state-changes.ts';
import { TokenValidator } from './token-validator.ts';

export interface VerifierNodeOptions {
  market: string;
  nodeId: string;
  hubUrl: string;
  /** The hub's OAuth issuer and the audience of this market's tokens. */
  issuer: string;
  audience: string;
  dataDir: string;
  host: string;
  port: number;
  /** The node's verifier-node certificate (PEM with chain) and key; the packtrust CA chain. */
  certPem: string;
  keyPem: string;
  caPem: string;
  feedWaitMs?: number;
  feedPageSize?: number;
  hubDeadlineMs?: number;
  /** The pharmacy listener's time limits (config); the factory's defaults where not given. */
  timeouts?: Partial<HttpTimeouts>;
  /** The hub's evidence log key (config `evidenceLogKey`): the node witnesses the log with it. */
  evidenceLogKey?: string;
  alertWindowMs?: number;
  /** Bulk state changes up to this many packs are answered at once, larger ones become jobs. */
  bulkSyncMaxPacks?: number;
  /** How long a finished bulk job's results are kept, in seconds (default a day). */
  bulkJobRetentionSeconds?: number;
  /** Bulk jobs a client may have waiting or running at once. */
  bulkMaxJobsPerClient?: number;
  logger: Logger;
}

export interface RunningVerifierNode {
  url: string;
  replica: Replica;
  replicator: Replicator;
  stateChanges: StateChanges;
  bulkJobs: BulkJobs;
  alerts: AlertOutbox;
  witness: LogWitness | undefined;
  close(): Promise<void>;
}

/** A verifier node: replica and replication, alert and change outboxes, and the HTTPS pharmacy API. */
export async function startVerifierNode(o: VerifierNodeOptions): Promise<RunningVerifierNode> {
  const replica = new Replica(join(o.dataDir, 'replica'));
  // The node's own durable state (outboxes, answered transactions) lives apart from the replica:
  // its small commits then never wait on the replica's free-page list, which a large catch-up
  // leaves long, and a resynchronisation never touches it.
  const local = Store.open({ path: join(o.dataDir, 'local') });
  const hub = new HubClient({
    deadlineMs: o.hubDeadlineMs ?? DEFAULT_HUB_DEADLINE_MS,
    hubUrl: o.hubUrl,
    market: o.market,
    certPem: o.certPem,
    keyPem: o.keyPem,
    caPem: o.caPem,
  });
  const witness = o.evidenceLogKey ? new LogWitness(replica, hub, o.evidenceLogKey, o.logger) : undefined;
  if (witness) hub.onCheckpoint((note) => witness.offer(note));
  else o.logger.warn('no evidenceLogKey configured: the hub evidence log checkpoints are not witnessed');
  const replicator = new Replicator(replica, hub, o.logger, {
    pageSize: o.feedPageSize ?? DEFAULT_FEED_PAGE_SIZE,
    waitMs: o.feedWaitMs ?? DEFAULT_FEED_WAIT_MS,
    retryMs: 500,
  });
  const validator = new TokenValidator({
    issuer: o.issuer,
    audience: o.audience,
    market: o.market,
    signingKeys: () => replica.signingKeys(),
    isDisabled: (clientId) => replica.isDisabled(clientId),
  });
  const alerts = new AlertOutbox(local, hub, o.logger, {
    market: o.market,
    nodeId: o.nodeId,
    ownerOf: (productCode) => replica.product(productCode)?.owner,
    limits: { windowMs: o.alertWindowMs ?? DEFAULT_ALERT_WINDOW_MS },
  });
  const stateChanges = new StateChanges(local, replica, hub, alerts, o.logger);
  const bulkJobs = new BulkJobs(local, stateChanges, o.logger, {
    retentionSeconds: o.bulkJobRetentionSeconds ?? 24 * 3600,
    maxUnfinishedPerClient: o.bulkMaxJobsPerClient ?? DEFAULT_BULK_MAX_JOBS_PER_CLIENT,
    serving: () => replicator.serving,
    isDisabled: (clientId) => replica.isDisabled(clientId),
  });
  replicator.start();
  witness?.start();
  alerts.start();
  stateChanges.start();
  bulkJobs.start();
  // The hub refuses this node's certificate: nothing more is sent (the outboxes keep what waits,
  // for a restart with a new certificate); the replicator stops and the node stops serving.
  hub.onCertificateRefused(() => {
    alerts.stop();
    stateChanges.stop();
    void bulkJobs.stop();
  });
  const app = createVerifierServer({
    market: o.market,
    nodeId: o.nodeId,
    replica,
    replicator,
    validator,
    alerts,
    stateChanges,
    bulkJobs,
    bulkSyncMaxPacks: o.bulkSyncMaxPacks ?? DEFAULT_BULK_SYNC_MAX_PACKS,
    witness,
    timeouts: o.timeouts,
    certPem: o.certPem,
    keyPem: o.keyPem,
    logger: o.logger,
  });
  const url = await listen(app, o.host, o.port);
  return {
    url,
    replica,
    replicator,
    stateChanges,
    bulkJobs,
    alerts,
    witness,
    async close() {
      alerts.stop();
      stateChanges.stop();
      // Before the listener and the stores close: a job being decided stops between two pages.
      await bulkJobs.stop();
      await witness?.stop();
      await app.close();
      await replicator.stop();
      await hub.close();
      await replica.close();
      await local.close();
    },
  };
}
