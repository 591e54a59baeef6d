import { createHttpServer, type HttpServer, type HttpTimeouts } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import type { AlertOutbox } from './alerts.ts';
import type { BulkJobs } from './bulk-jobs.ts';
import type { LogWitness } from './log-witness.ts';
import type { Replica } from './replica.ts';
import type { Replicator } from './replication.ts';
import { monitoringRoutes } from './routes/monitoring.ts';
import { pharmacyRoutes } from './routes/pharmacy.ts';
import { AnswerSigner } from './signed-answers.ts';
import type { StateChanges } from './state-changes.ts';
import type { TokenValidator } from './token-validator.ts';

export interface VerifierServerOptions {
  market: string;
  nodeId: string;
  replica: Replica;
  replicator: Replicator;
  validator: TokenValidator;
  alerts: AlertOutbox;
  stateChanges: StateChanges;
  bulkJobs: BulkJobs;
  /** Bulk state changes up to this many packs are answered at once, larger ones become jobs. */
  bulkSyncMaxPacks: number;
  /** The witness of the hub's evidence log, when the node has its key. */
  witness?: LogWitness | undefined;
  /** The node's certificate (leaf first, chain after) and key: TLS, and the pharmacies' signed answers. */
  certPem: string;
  keyPem: string;
  /** The listener's time limits (config); the factory's defaults where not given. */
  timeouts?: Partial<HttpTimeouts> | undefined;
  logger: Logger;
}

/**
 * The HTTP API of a verifier node (openapi/verifier.yaml): the pharmacies' calls
 * (routes/pharmacy.ts) and what monitoring reads (routes/monitoring.ts). Errors are problem+json
 * with the codes of verifier/src/errors.ts.
 */
export function createVerifierServer(options: VerifierServerOptions): HttpServer {
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: 4 * 1024 * 1024,
    tls: { key: options.keyPem, cert: options.certPem },
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  app.register(pharmacyRoutes, { ...options, answers: new AnswerSigner(options.certPem, options.keyPem) });
  app.register(monitoringRoutes, options);
  return app;
}
