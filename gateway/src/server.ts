import { createHttpServer, type HttpServer, type HttpTimeouts } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { ActorProof } from './actors.ts';
import type { ClientIdentifier } from './client-identity.ts';
import type { EvidenceNotary } from './evidence-checkpoints.ts';
import { FeedNotifier } from './feed.ts';
import type { HubStore } from './hub-store.ts';
import { hubContract } from './master-data.ts';
import { clientsDb, disabledSince } from './oauth/clients.ts';
import { OAUTH_METADATA_PATH, OAUTH_PREFIX, type OAuthService } from './oauth/provider.ts';
import { DEFAULT_RANDOMISATION_OPTIONS, type RandomisationOptions } from './randomisation.ts';
import type { ReceiptSigner } from './receipt.ts';
import { evidenceRoutes } from './routes/evidence.ts';
import { feedRoutes } from './routes/feed.ts';
import { manufacturerRoutes } from './routes/manufacturer.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { operatorRoutes } from './routes/operator.ts';
import { verificationOrgRoutes } from './routes/verification-org.ts';
import { signedWrites } from './signed-write.ts';

export interface GatewayOptions {
  store: HubStore;
  identifier: ClientIdentifier;
  receiptSigner: ReceiptSigner;
  /** Signs the evidence log's checkpoints, with a key kept outside the store (evidence-checkpoints.ts). */
  notary: EvidenceNotary;
  tls: { key: string | Buffer; cert: string | Buffer; ca: string };
  signatureWindowSeconds: number;
  /**
   * The URL clients reach the hub at (configuration `publicUrl`, by default `https://host:port`):
   * every signed write's `@target-uri` is read with it (signed-request.ts). Asked at each write,
   * as a listener on port 0 learns its port only once it listens.
   */
  publicUrl(): string;
  maxBodyBytes: number;
  /** How long a client may take (configuration; common/src/http.ts). */
  timeouts?: Partial<HttpTimeouts>;
  /** `reject`: uploads whose serials break the regulation are refused; `warn`: accepted with the report. */
  randomisationPolicy: 'reject' | 'warn';
  randomisation?: RandomisationOptions;
  /** Whether packs of a batch whose expiry date has passed are registered (configuration). */
  acceptExpiredBatches: boolean;
  /**
   * The OAuth provider for pharmacies, mounted under /oauth. Its tokens are also the proof of who
   * acted in the pack events and alerts nodes forward; its public keys travel in every snapshot.
   */
  oauth: OAuthService;
  /** How long after its access token expired a queued offline event is accepted (gateway config). */
  offlineWindowSeconds: number;
  logger: Logger;
}

/** How often expired signature nonces are removed, and retired signing keys looked at. */
const NONCE_PRUNE_INTERVAL_MS = 60_000;

/** Bytes an OAuth request body may have. */
const OAUTH_BODY_LIMIT = 64 * 1024;

/**
 * The hub's front door: mutual TLS, per-request certificate checks, RFC 9421 signed writes that
 * are kept as evidence and answered with a signed receipt, in the same LMDB transaction as the
 * data they change. The routes come in groups by caller (routes/: manufacturers, verifier nodes'
 * writes, the feed, a market's verification organisation), each a fastify plugin whose identity hook works out who is calling; the
 * OAuth provider for pharmacies is mounted under /oauth.
 */
export function createGatewayServer(options: GatewayOptions): HttpServer {
  const { store, identifier, oauth, notary } = options;
  // The evidence log must be the one the notary signed last (a store from before the Merkle tree
  // gets its tree and first checkpoint here).
  notary.open(store.evidence, store.store);
  const notifier = new FeedNotifier();
  const clients = clientsDb(store.store);
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: options.maxBodyBytes,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
    binaryContentTypes: ['application/json', 'text/plain', 'application/x-www-form-urlencoded'],
    tls: { key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca, requestCert: true },
  });
  app.decorate('hubPublicUrl', options.publicUrl);
  // Long-polls of the verifier nodes would otherwise hold the close for up to their wait.
  app.addHook('preClose', async () => notifier.shutdown());

  // In the background: every accepted write leaves a nonce, and the expired ones are removed; a
  // retired signing key whose tokens have all expired leaves the key set, which then goes out on
  // every market's feed, so nodes stop accepting it without a second rotation.
  let pruning: Promise<unknown> = Promise.resolve();
  let publishedKeys = oauth.signingKeys.keySetTag();
  const pruneTimer = setInterval(() => {
    pruning = pruning
      .then(() => store.nonces.prune())
      .then(() => {
        const tag = oauth.signingKeys.keySetTag();
        if (tag === publishedKeys) return;
        publishedKeys = tag;
        return store.transaction(() => store.publishSigningKeys(store.markets, oauth.signingKeys.publicJwks()));
      })
      .catch((err: unknown) => options.logger.error({ err }, 'background upkeep of the hub store failed'));
  }, NONCE_PRUNE_INTERVAL_MS);
  pruneTimer.unref();
  app.addHook('onClose', async () => {
    clearInterval(pruneTimer);
    await pruning;
  });

  // OAuth requests are a form of a few hundred bytes; the uploads' limit would let anyone without
  // a credential make the gateway read 64 MB bodies here.
  app.all(OAUTH_PREFIX, { bodyLimit: OAUTH_BODY_LIMIT }, oauth.handle);
  app.all(`${OAUTH_PREFIX}/*`, { bodyLimit: OAUTH_BODY_LIMIT }, oauth.handle);
  // RFC 8414 §3.1: the issuer's metadata lives outside its path, at the root of the host.
  app.get(OAUTH_METADATA_PATH, { schema: hubContract.routeSchema('getOAuthServerMetadata') }, async () =>
    oauth.metadata(),
  );

  // Public: whether the gateway serves, nothing more (docs/operations.md, "Monitoring"); it serves
  // no client without a current CRL. The figures are on the operators' /metrics (routes/operator.ts).
  app.get('/health', { schema: hubContract.routeSchema('getHealth') }, async (_request, reply) =>
    identifier.trust.crlCurrent() ? { status: 'ok' } : reply.code(503).send({ status: 'unavailable' }),
  );

  const signedWrite = signedWrites({
    store,
    receiptSigner: options.receiptSigner,
    notary,
    signatureWindowSeconds: options.signatureWindowSeconds,
    committed: (markets) => notifier.notify(markets),
  });
  app.register(manufacturerRoutes, {
    store,
    identifier,
    signedWrite,
    randomisationPolicy: options.randomisationPolicy,
    randomisation: options.randomisation ?? DEFAULT_RANDOMISATION_OPTIONS,
    acceptExpiredBatches: options.acceptExpiredBatches,
  });
  const actors = new ActorProof({
    issuer: () => oauth.issuer,
    audience: (market) => oauth.audience(market),
    keys: oauth.signingKeys,
    offlineWindowSeconds: options.offlineWindowSeconds,
    disabledSince: (clientId) => disabledSince(clients, clientId),
  });
  app.register(nodeRoutes, { store, identifier, signedWrite, actors });
  app.register(evidenceRoutes, { store, identifier, notary });
  app.register(operatorRoutes, { store, identifier });
  app.register(verificationOrgRoutes, { store, identifier });
  app.register(feedRoutes, {
    store,
    identifier,
    notifier,
    signingKeys: (read) => oauth.signingKeys.publicJwks(0, read),
  });
  return app;
}
