import type { FastifyRequest } from 'fastify';
import { PacktrustError, PROBLEM_CONTENT_TYPE } from '../../common/src/errors.ts';
import { createHttpServer, type HttpServer, peerCertificateChain } from '../../common/src/http.ts';
import type { HttpMessage } from '../../common/src/http-signatures/index.ts';
import type { Logger } from '../../common/src/log.ts';
import type { components } from '../../openapi/generated/hub.ts';
import { ActorProof, type EventRefusal } from './actors.ts';
import { checkBatchFields, ProblemList, parseSerials } from './batches.ts';
import type { ClientIdentifier, ClientIdentity, ClientProfile } from './client-identity.ts';
import {
  BadRequest,
  BatchClosed,
  DuplicateSerials,
  EvidenceSequenceMoved,
  FeedUnknown,
  MarketUnknown,
  MasterDataInvalid,
  NotFound,
  NotOwner,
  RandomisationRejected,
  SignatureReplayed,
  WrongMarket,
} from './errors.ts';
import { type EvidenceRecord, sha256Hex } from './evidence.ts';
import { FeedNotifier, recordsAfter, SnapshotSlots, snapshotStream } from './feed.ts';
import { type Batch, type HubStore, PACKS_PER_FEED_RECORD, type Product, type StoredAlert } from './hub-store.ts';
import { hubContract, parseProductInput, parseReason } from './master-data.ts';
import { clientsDb, disabledSince } from './oauth/clients.ts';
import { OAUTH_PREFIX, type OAuthService } from './oauth/provider.ts';
import { applyPackEvent, type ForwardedEvent, type PackEvent, type PackEventResult } from './pack-events.ts';
import { checkNewProductCode } from './prefixes.ts';
import { analyseSerials, DEFAULT_RANDOMISATION_OPTIONS, type RandomisationOptions } from './randomisation.ts';
import { type ReceiptSigner, type SignedResponse, signReceipt } from './receipt.ts';
import { verifyRequestSignature } from './signed-request.ts';

type ForwardedAlert = components['schemas']['Alert'];

export interface GatewayOptions {
  store: HubStore;
  identifier: ClientIdentifier;
  receiptSigner: ReceiptSigner;
  tls: { key: string | Buffer; cert: string | Buffer; ca: string };
  signatureWindowSeconds: number;
  maxBodyBytes: number;
  /** `reject`: uploads whose serials break the regulation are refused; `warn`: accepted with the report. */
  randomisationPolicy: 'reject' | 'warn';
  randomisation?: RandomisationOptions;
  /**
   * The OAuth provider for pharmacies, mounted under /oauth. Its tokens are also the proof of who
   * acted in the pack events and alerts nodes forward; its public keys travel in every snapshot.
   */
  oauth: OAuthService;
  /** How long after its access token expired a queued offline event is accepted (gateway config). */
  offlineWindowSeconds: number;
  logger: Logger;
}

/**
 * Snapshots (feed.ts `SnapshotSlots`): one at a time per node certificate, 16 at once in all, and
 * the connection closed when its reader has read nothing for a minute.
 */
const SNAPSHOT_LIMITS = { perClient: 1, total: 16, stallMs: 60_000 };

/** How often expired signature nonces are removed from the hub store. */
const NONCE_PRUNE_INTERVAL_MS = 60_000;

/** What a write does once its request is authenticated: validate (may throw), then write inside the transaction. */
interface WriteOutcome {
  status: number;
  contentType?: string;
  /** The answer; or, when a write is decided inside the transaction, what `apply` returns. */
  payload?: unknown;
  /** Runs inside the write transaction, after the nonce is claimed; gets the evidence sequence. */
  apply(evidenceSeq: number): unknown;
  /** The markets whose feed `apply` appends to (their long-polling readers are woken after the commit). */
  markets?: Iterable<string>;
}

/**
 * The hub's front door: mutual TLS, per-request certificate checks, RFC 9421 signed writes that
 * are kept as evidence and answered with a signed receipt, in the same LMDB transaction as the
 * data they change.
 */
export function createGatewayServer(options: GatewayOptions): HttpServer {
  const { store, identifier, oauth } = options;
  const feedNotifier = new FeedNotifier();
  const clients = clientsDb(store.store);
  const actors = new ActorProof({
    issuer: () => oauth.issuer,
    audience: (market) => oauth.audience(market),
    keys: oauth.signingKeys,
    offlineWindowSeconds: options.offlineWindowSeconds,
    disabledSince: (clientId) => disabledSince(clients, clientId),
  });
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: options.maxBodyBytes,
    binaryContentTypes: ['application/json', 'text/plain', 'application/x-www-form-urlencoded'],
    tls: { key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca, requestCert: true },
  });
  // Long-polls of the verifier nodes would otherwise hold the close for up to their wait.
  app.addHook('preClose', async () => feedNotifier.shutdown());

  // Every accepted write leaves a nonce; the expired ones are removed in the background.
  let pruning: Promise<unknown> = Promise.resolve();
  const pruneTimer = setInterval(() => {
    pruning = pruning
      .then(() => store.pruneNonces())
      .catch((err: unknown) => options.logger.error({ err }, 'removing expired nonces failed'));
  }, NONCE_PRUNE_INTERVAL_MS);
  pruneTimer.unref();
  app.addHook('onClose', async () => {
    clearInterval(pruneTimer);
    await pruning;
  });

  /** Authenticates, verifies the signature, runs `write`, stores evidence and answers with a receipt. */
  const signedWrite =
    (
      profiles: readonly ClientProfile[],
      write: (client: ClientIdentity, body: Buffer, request: FastifyRequest) => WriteOutcome | Promise<WriteOutcome>,
    ) =>
    async (request: FastifyRequest, reply: import('fastify').FastifyReply) => {
      const client = identifier.identify(request, profiles);
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const message = messageOf(request);
      const verified = verifyRequestSignature(message, body, client, options.signatureWindowSeconds);
      if (store.nonceSeen(client.fingerprint, verified.nonce)) {
        throw new SignatureReplayed(`Nonce "${verified.nonce}" was already used by this certificate`);
      }
      let outcome: WriteOutcome;
      try {
        outcome = await write(client, body, request);
      } catch (err) {
        if (!(err instanceof PacktrustError && err.status === 403)) throw err;
        // An authenticated party tried to act beyond its rights: the attempt is kept as evidence,
        // and the refusal is signed like a receipt. Nothing else is written.
        request.log.warn({ client: client.serial, org: client.org, code: err.code }, err.message);
        outcome = {
          status: 403,
          contentType: `${PROBLEM_CONTENT_TYPE}; charset=utf-8`,
          payload: err.toProblem(),
          apply: () => undefined,
        };
      }
      const receivedAt = new Date().toISOString();
      let response: SignedResponse | undefined;
      await store.transaction(() => {
        const expires = (verified.created + options.signatureWindowSeconds) * 1000 + 1000;
        if (!store.claimNonce(client.fingerprint, verified.nonce, expires)) {
          throw new SignatureReplayed(`Nonce "${verified.nonce}" was already used by this certificate`);
        }
        const seq = store.evidence.lastSeq() + 1;
        const decided = outcome.apply(seq);
        const payload = { ...((outcome.payload ?? decided) as object), evidence: { seq } };
        response = signReceipt(
          message,
          verified.label,
          outcome.status,
          payload,
          options.receiptSigner,
          outcome.contentType,
        );
        const record: EvidenceRecord = {
          receivedAt,
          method: request.method,
          targetUri: message.targetUri!,
          headers: headerPairs(request),
          bodySha256: sha256Hex(body),
          bodyLength: body.length,
          signatureLabel: verified.label,
          nonce: verified.nonce,
          clientCertificates: peerCertificateChain(request).map((c) => c.toString('base64')),
          clientFingerprint: client.fingerprint,
          org: client.org,
          response: {
            status: response.status,
            headers: Object.entries(response.headers),
            bodySha256: sha256Hex(response.body),
          },
        };
        const entry = store.evidence.append(record, body);
        if (entry.seq !== seq) throw new EvidenceSequenceMoved('evidence sequence moved inside the transaction');
      });
      if (outcome.markets) feedNotifier.notify(outcome.markets);
      const r = response!;
      return reply.code(r.status).headers(r.headers).send(r.body);
    };

  app.all(OAUTH_PREFIX, oauth.handle);
  app.all(`${OAUTH_PREFIX}/*`, oauth.handle);

  app.get('/health', { schema: hubContract.routeSchema('getHealth') }, async () => ({
    status: 'ok',
    evidence: store.evidence.lastSeq(),
    crl: options.identifier.trust.crlStatus(),
  }));

  app.post(
    '/v1/products',
    signedWrite(['manufacturer'], (client, body) => {
      const input = parseProductInput(body);
      // A market is a feed (an LMDB database) and the nodes' tokens: only the configured ones.
      const unknown = input.markets.flatMap((m, i) => (store.serves(m) ? [] : [{ index: i, market: m }]));
      if (unknown.length > 0) {
        throw new MarketUnknown(`This hub does not serve ${unknown.map((u) => u.market).join(', ')}`, {
          errors: unknown.map((u) => ({
            path: `/markets/${u.index}`,
            message: `${u.market} is not a market this hub serves`,
          })),
        });
      }
      /** The product as stored, if the caller may write it; a new code must be under one of its prefixes. */
      const writable = () => {
        const found = store.product(input.productCode);
        if (found && found.owner !== client.org) {
          throw new NotOwner(`Product ${input.productCode} is registered by another organisation`);
        }
        if (!found) checkNewProductCode(store.prefixes, client.org, input.productCode);
        return found;
      };
      const existing = writable();
      if (existing?.status === 'WITHDRAWN') throw new MasterDataInvalid(`Product ${input.productCode} is withdrawn`);
      const now = new Date().toISOString();
      const product: Product = {
        ...input,
        owner: client.org,
        status: 'ACTIVE',
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      const markets = [...new Set([...product.markets, ...(existing?.markets ?? [])])];
      return {
        status: existing ? 200 : 201,
        payload: { product },
        markets,
        apply(evidenceSeq) {
          // Asked again where it counts: `prefix move` (another process) may have committed since.
          writable();
          store.putProduct(product);
          // A market the product leaves still learns of the change, so its nodes stop listing it.
          store.publish(markets, { type: 'product', product, evidenceSeq });
        },
      };
    }),
  );

  /** The client's own product, or 403 whether it is unknown or another organisation's. */
  const ownProduct = (client: ClientIdentity, code: string): Product => {
    const product = store.product(code);
    if (!product || product.owner !== client.org) throw new NotOwner(`No product ${code} owned by ${client.org}`);
    return product;
  };
  const ownBatch = (client: ClientIdentity, code: string, batch: string): { product: Product; batch: Batch } => {
    const product = ownProduct(client, code);
    const found = store.batch(code, batch);
    if (!found) throw new NotFound(`Product ${code} has no batch ${batch}`);
    return { product, batch: found };
  };

  app.post<{ Params: { productCode: string; batch: string }; Querystring: { expiry?: string } }>(
    '/v1/products/:productCode/batches/:batch/packs',
    signedWrite(['manufacturer'], (client, body, request) => {
      const { productCode: code, batch: batchId } = request.params as { productCode: string; batch: string };
      const product = ownProduct(client, code);
      if (product.status === 'WITHDRAWN') throw new BatchClosed(`Product ${code} is withdrawn`);
      const fields = checkBatchFields(batchId, (request.query as { expiry?: string }).expiry);
      const existing = store.batch(code, batchId);
      if (existing && existing.status !== 'ACTIVE')
        throw new BatchClosed(`Batch ${batchId} is ${existing.status.toLowerCase()}`);
      if (existing && existing.expiry !== fields.expiry) {
        throw new MasterDataInvalid(`Batch ${batchId} has expiry ${existing.expiry}, not ${fields.expiry}`);
      }
      const serials = parseSerials(body);
      const report = analyseSerials(serials, options.randomisation ?? DEFAULT_RANDOMISATION_OPTIONS);
      if (report.verdict === 'reject' && options.randomisationPolicy === 'reject') {
        throw new RandomisationRejected(
          report.findings
            .filter((f) => f.severity === 'reject')
            .map((f) => f.detail)
            .join('; '),
          {
            randomisation: report,
          },
        );
      }
      const now = new Date().toISOString();
      const batch: Batch = {
        productCode: code,
        batch: batchId,
        ...fields,
        status: 'ACTIVE',
        packCount: (existing?.packCount ?? 0) + serials.length,
        owner: client.org,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      return {
        status: 201,
        payload: { batch, packsAdded: serials.length, randomisation: report },
        markets: product.markets,
        apply(evidenceSeq) {
          // Checked inside the transaction, in the same pass as the writes (a pack that exists is
          // not overwritten): two uploads of the same serials cannot both pass, and a refusal
          // aborts the transaction, so nothing is written.
          const duplicates = new ProblemList();
          for (const serial of store.registerPacks(code, batchId, serials)) {
            duplicates.add({ item: serial, problem: 'already registered for this product' });
          }
          if (duplicates.count > 0) {
            throw new DuplicateSerials(
              `${duplicates.count} serial(s) are already registered for product ${code}`,
              duplicates.toExtensions(),
            );
          }
          store.putBatch(batch);
          store.publish(product.markets, { type: 'batch', batch, evidenceSeq });
          for (let i = 0; i < serials.length; i += PACKS_PER_FEED_RECORD) {
            const chunk = serials.slice(i, i + PACKS_PER_FEED_RECORD);
            store.publish(product.markets, {
              type: 'packs',
              productCode: code,
              batch: batchId,
              count: chunk.length,
              serials: chunk.join('\n'),
              evidenceSeq,
            });
          }
        },
      };
    }),
  );

  const closeBatch = (status: 'RECALLED' | 'WITHDRAWN') =>
    signedWrite(['manufacturer'], (client, body, request) => {
      const { productCode: code, batch: batchId } = request.params as { productCode: string; batch: string };
      const { reason } = parseReason(body);
      const { product, batch } = ownBatch(client, code, batchId);
      // Recall and withdrawal are irreversible; a withdrawal may still follow a recall.
      if (batch.status === 'WITHDRAWN' || batch.status === status) {
        throw new BatchClosed(`Batch ${batchId} is already ${batch.status.toLowerCase()}`);
      }
      const updated: Batch = { ...batch, status, reason, updatedAt: new Date().toISOString() };
      return {
        status: 200,
        payload: { batch: updated },
        markets: product.markets,
        apply(evidenceSeq) {
          store.putBatch(updated);
          store.publish(product.markets, { type: 'batch', batch: updated, evidenceSeq });
        },
      };
    });
  app.post('/v1/products/:productCode/batches/:batch/recall', closeBatch('RECALLED'));
  app.post('/v1/products/:productCode/batches/:batch/withdraw', closeBatch('WITHDRAWN'));

  app.post(
    '/v1/products/:productCode/withdraw',
    signedWrite(['manufacturer'], (client, body, request) => {
      const { productCode: code } = request.params as { productCode: string };
      const { reason } = parseReason(body);
      const product = ownProduct(client, code);
      if (product.status === 'WITHDRAWN') throw new BatchClosed(`Product ${code} is already withdrawn`);
      const updated: Product = {
        ...product,
        status: 'WITHDRAWN',
        withdrawnReason: reason,
        updatedAt: new Date().toISOString(),
      };
      return {
        status: 200,
        payload: { product: updated },
        markets: product.markets,
        apply(evidenceSeq) {
          store.putProduct(updated);
          store.publish(product.markets, { type: 'product', product: updated, evidenceSeq });
        },
      };
    }),
  );

  /** A node acts only for its market: a product the hub knows must be sold there (an unknown one is decided as unknown). */
  const soldInNodeMarket = (node: ClientIdentity, productCode: string): void => {
    const product = store.product(productCode);
    if (product && !product.markets.includes(node.market ?? ''))
      throw new WrongMarket(`Product ${productCode} is not sold in ${node.market}, the market this node serves`);
  };

  const parseEvents = hubContract.jsonBodyParser<{ events: ForwardedEvent[] }>('postPackEvents', BadRequest);
  // Verifier nodes' writes: signed and kept as evidence like the manufacturers'. Each event is
  // the act of the client whose token it carries (gateway/src/actors.ts); the hub decides each
  // one by compare-and-set inside the transaction, so the answer comes from `apply`.
  app.post(
    '/v1/packs/events',
    signedWrite(['verifier-node'], async (node, body, request) => {
      const { events } = parseEvents(body);
      const now = Date.now();
      const proven: (PackEvent | PackEventResult)[] = [];
      for (const e of events) {
        soldInNodeMarket(node, e.productCode);
        const { actor, refusal } = await actors.prove(e.token, node, e.at, now);
        proven.push(
          refusal
            ? refused(e.txId, refusal)
            : { txId: e.txId, productCode: e.productCode, serial: e.serial, op: e.op, at: e.at, actor },
        );
      }
      const today = new Date(now).toISOString().slice(0, 10);
      const markets = new Set<string>();
      return {
        status: 200,
        markets,
        apply() {
          const results: PackEventResult[] = proven.map((e) => {
            if (!('actor' in e)) return e;
            const r = applyPackEvent(store, e, today);
            if (r.accepted) for (const m of store.product(e.productCode)?.markets ?? []) markets.add(m);
            return r;
          });
          request.log.debug({ node: node.serial, events: events.length }, 'pack events decided');
          return { results };
        },
      };
    }),
  );

  const parseAlerts = hubContract.jsonBodyParser<{ alerts: ForwardedAlert[] }>('postAlerts', BadRequest);
  app.post(
    '/v1/alerts',
    signedWrite(['verifier-node'], async (node, body) => {
      const { alerts } = parseAlerts(body);
      const receivedAt = new Date().toISOString();
      const now = Date.now();
      const accepted: StoredAlert[] = [];
      for (const { token, ...a } of alerts) {
        if (a.market !== node.market)
          throw new WrongMarket(`This node serves ${node.market}; alert ${a.id} is for ${a.market}`);
        soldInNodeMarket(node, a.pack.productCode);
        const { actor, refusal } = await actors.prove(token, node, Date.parse(a.raisedAt), now);
        if (refusal) continue;
        const owner = store.product(a.pack.productCode)?.owner;
        const raisedBy = { clientId: actor.clientId, org: actor.org, location: actor.location, role: actor.role };
        accepted.push({ ...a, raisedBy, receivedAt, ...(owner ? { owner } : {}) });
      }
      return {
        status: 200,
        apply() {
          let stored = 0;
          for (const a of accepted) if (store.addAlert(a)) stored++;
          return { stored, duplicates: accepted.length - stored, refused: alerts.length - accepted.length };
        },
      };
    }),
  );

  app.get<{ Querystring: { productCode?: string; limit?: number } }>(
    '/v1/alerts',
    { schema: hubContract.routeSchema('getAlerts') },
    async (request) => {
      const client = identifier.identify(request, ['manufacturer']);
      const { productCode, limit = 100 } = request.query;
      if (productCode) ownProduct(client, productCode);
      return { alerts: store.alertsOf(client.org, limit, productCode) };
    },
  );

  /** Feed readers are the verifier nodes of that market, which the hub serves. */
  const feedReader = (request: FastifyRequest, market: string): ClientIdentity => {
    const client = identifier.identify(request, ['verifier-node']);
    // Before anything is opened: a market not configured has no feed, and never gets one.
    if (!store.serves(market)) throw new FeedUnknown(`This hub serves no market ${market}`);
    if (client.market !== market)
      throw new WrongMarket(`This node serves ${client.market ?? 'no market'}, not ${market}`);
    return client;
  };

  const snapshots = new SnapshotSlots(SNAPSHOT_LIMITS);
  app.get<{ Params: { market: string } }>('/v1/feed/:market/snapshot', async (request, reply) => {
    const node = feedReader(request, request.params.market);
    const release = snapshots.claim(node.fingerprint);
    // A reader that reads nothing for this long loses its connection, and with it the snapshot
    // and its read transaction (SnapshotSlots).
    const socket = request.raw.socket;
    const stalled = () => socket.destroy();
    socket.setTimeout(SNAPSHOT_LIMITS.stallMs, stalled);
    reply.raw.once('close', () => {
      release();
      // The timeout itself is left: Node sets its own on a kept-alive socket after the answer.
      socket.off('timeout', stalled);
    });
    try {
      return reply
        .type('application/x-ndjson')
        .send(snapshotStream(store, request.params.market, (opts) => oauth.signingKeys.publicJwks(0, opts)));
    } catch (err) {
      release();
      throw err;
    }
  });

  app.get<{ Params: { market: string }; Querystring: { after?: string; limit?: string; wait?: string } }>(
    '/v1/feed/:market/records',
    async (request, reply) => {
      const { market } = request.params;
      feedReader(request, market);
      const after = nonNegativeInt(request.query.after ?? '0', 'after');
      const limit = Math.min(nonNegativeInt(request.query.limit ?? '1000', 'limit') || 1, 10_000);
      const waitMs = Math.min(nonNegativeInt(request.query.wait ?? '0', 'wait'), 60_000);
      let records = recordsAfter(store, market, after, limit);
      if (records.length === 0 && waitMs > 0) {
        const closed = new AbortController();
        request.raw.once('close', () => closed.abort());
        // Woken by this process's commits; looking again every second also catches records that
        // another process appended (`packtrust-gateway client disable` on the same store).
        const until = Date.now() + waitMs;
        while (records.length === 0 && !closed.signal.aborted && !feedNotifier.closing) {
          const left = until - Date.now();
          if (left <= 0) break;
          await feedNotifier.wait(market, Math.min(left, 1000), closed.signal);
          // The certificate is checked again each time: a node revoked while it waits is told
          // so within a second of the gateway's CRL listing it (401), not at the end of its wait.
          feedReader(request, market);
          records = recordsAfter(store, market, after, limit);
        }
      }
      const last = store.feed(market).last();
      return reply
        .type('application/x-ndjson')
        .header('x-feed-last-seq', String(last?.seq ?? 0))
        .send(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    },
  );

  app.get<{ Params: { productCode: string; batch: string } }>(
    '/v1/products/:productCode/batches/:batch',
    { schema: hubContract.routeSchema('getBatch') },
    async (request) => {
      const client = identifier.identify(request, ['manufacturer']);
      return { batch: ownBatch(client, request.params.productCode, request.params.batch).batch };
    },
  );

  app.get<{ Params: { productCode: string } }>(
    '/v1/products/:productCode',
    { schema: hubContract.routeSchema('getProduct') },
    async (request) => {
      const client = identifier.identify(request, ['manufacturer']);
      return { product: ownProduct(client, request.params.productCode) };
    },
  );

  return app;
}

function messageOf(request: FastifyRequest): HttpMessage {
  return {
    method: request.method,
    targetUri: `https://${request.headers.host ?? 'localhost'}${request.url}`,
    headers: request.headers as HttpMessage['headers'],
  };
}

function headerPairs(request: FastifyRequest): [string, string][] {
  const raw = request.raw.rawHeaders;
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}

const refused = (txId: string, r: EventRefusal): PackEventResult => ({
  txId,
  accepted: false,
  code: r.code,
  detail: r.detail,
});

function nonNegativeInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new BadRequest(`${name} must be a non-negative integer`);
  return n;
}
