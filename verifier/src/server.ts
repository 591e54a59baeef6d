import { createHttpServer, type HttpServer, type TlsOptions } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import type { AlertOutbox } from './alerts.ts';
import type { LogWitness } from './log-witness.ts';
import type { Replica } from './replica.ts';
import type { Replicator } from './replication.ts';
import { monitoringRoutes } from './routes/monitoring.ts';
import { pharmacyRoutes } from './routes/pharmacy.ts';
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
  /** The witness of the hub's evidence log, when the node has its key. */
  witness?: LogWitness | undefined;
  tls?: TlsOptions;
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
    ...(options.tls ? { tls: options.tls } : {}),
  });
  app.register(pharmacyRoutes, options);
  app.register(monitoringRoutes, options);
  return app;
}
