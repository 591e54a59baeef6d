import type { FastifyInstance } from 'fastify';
import type { operations } from '../../../openapi/generated/hub.ts';
import { alertQueryOf } from '../alert-query.ts';
import { checkBatchFields, ProblemList, parseSerials, refuseRepeatedSerials } from '../batches.ts';
import type { ClientIdentifier, ClientIdentity } from '../client-identity.ts';
import {
  BatchClosed,
  DuplicateSerials,
  MarketAdditionTooLarge,
  MarketUnknown,
  MasterDataInvalid,
  NotFound,
  NotOwner,
  RandomisationRejected,
} from '../errors.ts';
import { type Batch, type HubStore, PACKS_PER_FEED_RECORD, type Product } from '../hub-store.ts';
import { hubContract, parseProductInput, parseReason, writeOf } from '../master-data.ts';
import { checkNewProductCode } from '../prefixes.ts';
import { analyseUpload, judgeUpload, type RandomisationOptions } from '../randomisation.ts';
import type { SignedWrite, WriteOutcome } from '../signed-write.ts';
import { identifyCallers } from './caller.ts';

interface ManufacturerRoutesOptions {
  store: HubStore;
  identifier: ClientIdentifier;
  signedWrite: SignedWrite;
  /** `reject`: uploads whose serials break the regulation are refused; `warn`: accepted with the report. */
  randomisationPolicy: 'reject' | 'warn';
  randomisation: RandomisationOptions;
  /** Whether packs of a batch whose expiry date has passed are registered (configuration). */
  acceptExpiredBatches: boolean;
}

type BatchParams = { productCode: string; batch: string };
/** The contract's query of GET /v1/alerts, `limit` defaulted by the route schema. */
type AlertsQuery = NonNullable<operations['getAlerts']['parameters']['query']> & { limit: number };

/**
 * The most packs a product update may copy to the markets it adds, in its one transaction (the
 * product's packs times the markets added; docs/domain.md §8): 500 feed records of
 * PACKS_PER_FEED_RECORD, five times the serials of the largest upload. Beyond it the update is
 * refused (`HUB_MARKET_ADDITION_TOO_LARGE`), so a write never holds the hub's one writer for long.
 */
const MAX_PACKS_COPIED = 5_000_000;

/**
 * What manufacturers do (manufacturer certificates only): register and withdraw products, upload
 * the packs of a batch (or check their serials first, storing nothing), recall and withdraw
 * batches, read their own products, batches and the alerts raised on them, without who raised
 * them. An organisation sees and changes only what it owns.
 */
export async function manufacturerRoutes(app: FastifyInstance, o: ManufacturerRoutesOptions): Promise<void> {
  const { store, signedWrite } = o;
  identifyCallers(app, o.identifier, ['manufacturer']);

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

  app.post(
    '/v1/products',
    writeOf('createProduct'),
    signedWrite((client, body) => {
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
      /**
       * What the write makes of the product as stored now, refused if the caller may not write it
       * (a new code must be under one of its prefixes; a withdrawn product stays withdrawn).
       */
      const decide = () => {
        const existing = store.product(input.productCode);
        if (existing && existing.owner !== client.org) {
          throw new NotOwner(`Product ${input.productCode} is registered by another organisation`);
        }
        if (!existing) checkNewProductCode(store.prefixes, client.org, input.productCode);
        if (existing?.status === 'WITHDRAWN') throw new MasterDataInvalid(`Product ${input.productCode} is withdrawn`);
        const now = new Date().toISOString();
        const product: Product = {
          ...input,
          owner: client.org,
          status: 'ACTIVE',
          createdAt: existing?.createdAt ?? now,
          updatedAt: now,
        };
        // The markets kept get the new product record; those added, the whole product; those
        // left out, its removal (docs/domain.md §8).
        const before = new Set(existing?.markets ?? []);
        const after = new Set(product.markets);
        const kept = [...after].filter((m) => before.has(m));
        const added = [...after].filter((m) => !before.has(m));
        const removed = [...before].filter((m) => !after.has(m));
        if (existing && added.length > 0) {
          const copied = store.packCountOf(product.productCode) * added.length;
          if (copied > MAX_PACKS_COPIED) {
            throw new MarketAdditionTooLarge(
              `Adding ${added.join(', ')} would copy ${copied} packs (${added.length} market(s) × the product's packs); ` +
                `one write copies at most ${MAX_PACKS_COPIED}`,
            );
          }
        }
        return { existing, product, kept, added, removed, markets: [...kept, ...added, ...removed] };
      };
      const first = decide();
      return {
        status: first.existing ? 200 : 201,
        markets: first.markets,
        apply(evidenceSeq) {
          // Decided again on what is stored now: a concurrent withdrawal, or a `prefix move` by
          // another process, may have committed since the first look.
          const { product, kept, added, removed } = decide();
          store.putProduct(product);
          store.publish(kept, { type: 'product', product, evidenceSeq });
          store.publishWholeProduct(added, product, evidenceSeq);
          store.publish(removed, { type: 'product-removed', productCode: product.productCode, evidenceSeq });
          return { product };
        },
      };
    }),
  );

  app.post(
    '/v1/products/:productCode/batches/:batch/packs',
    writeOf('uploadPacks'),
    signedWrite((client, body, request) => {
      const { productCode: code, batch: batchId } = request.params as BatchParams;
      const fields = checkBatchFields(batchId, (request.query as { expiry?: string }).expiry, {
        acceptExpired: o.acceptExpiredBatches,
        today: new Date().toISOString().slice(0, 10),
      });
      /** The product and the batch as stored now; refused if either no longer takes packs. */
      const current = () => {
        const product = ownProduct(client, code);
        if (product.status === 'WITHDRAWN') throw new BatchClosed(`Product ${code} is withdrawn`);
        const existing = store.batch(code, batchId);
        if (existing && existing.status !== 'ACTIVE')
          throw new BatchClosed(`Batch ${batchId} is ${existing.status.toLowerCase()}`);
        // Compared as dates (docs/domain.md §1): YYMM00 is the month's last day, so 291200 and 291231 agree.
        if (existing && existing.expiryDate !== fields.expiryDate) {
          throw new MasterDataInvalid(`Batch ${batchId} has expiry ${existing.expiry}, not ${fields.expiry}`);
        }
        return { product, existing };
      };
      const { product } = current();
      const serials = parseSerials(body, { repeats: 'later' });
      // The serials' statistics and generators once; the judgement against the product's other
      // serials (docs/domain.md §1) now to refuse early, and again inside the transaction on the
      // population stored then, so two concurrent uploads are judged together.
      const analysis = analyseUpload(serials, o.randomisation);
      const judge = () => {
        const judged = judgeUpload(analysis, store.serialStatistics(code), o.randomisation);
        const { report } = judged;
        if (report.verdict === 'reject' && o.randomisationPolicy === 'reject') {
          // A serial twice in the upload is the first thing to fix (and counted twice above).
          refuseRepeatedSerials(serials);
          const rejected = report.findings.filter((f) => f.severity === 'reject');
          throw new RandomisationRejected(rejected.map((f) => f.detail).join('; '), { randomisation: report });
        }
        return judged;
      };
      judge();
      return {
        status: 201,
        markets: product.markets,
        apply(evidenceSeq) {
          // Asked again inside the transaction: a recall, a withdrawal or another upload of this
          // batch may have committed since the first look, and must not be undone or lost.
          const { product, existing } = current();
          const { report, population } = judge();
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
          // Checked in the same pass as the writes: two uploads of the same serials cannot both
          // pass, and a refusal aborts the transaction, so nothing is written.
          const taken = store.registerPacks(code, batchId, serials);
          if (taken.length > 0) {
            // Taken by the upload's own earlier line (400, with the lines), or by a pack registered before (409).
            refuseRepeatedSerials(serials);
            const duplicates = new ProblemList();
            for (const serial of taken)
              duplicates.add({ item: serial, problem: 'already registered for this product' });
            throw new DuplicateSerials(
              `${duplicates.count} serial(s) are already registered for product ${code}`,
              duplicates.toExtensions(),
            );
          }
          store.putSerialStatistics(code, population);
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
          return { batch, packsAdded: serials.length, randomisation: report };
        },
      };
    }),
  );

  /**
   * A dry run of the randomisation check (issue 13): the report an upload of these serials would
   * get now, judged with the product's serials already registered, so that a manufacturer tests
   * its generator before printing. It stores nothing, so it is
   * not a signed write (no nonce, no evidence record, no receipt): like a read, the certificate
   * names the caller, and only the product's owner may ask.
   */
  app.post<{ Params: { productCode: string } }>(
    '/v1/products/:productCode/serials/check',
    { schema: hubContract.routeSchema('checkSerials'), ...writeOf('checkSerials') },
    async (request) => {
      const { productCode } = ownProduct(request.client, request.params.productCode);
      const { report: randomisation } = judgeUpload(
        analyseUpload(parseSerials(request.body as Buffer), o.randomisation),
        store.serialStatistics(productCode),
        o.randomisation,
      );
      return {
        productCode,
        randomisation,
        uploadWouldBeRefused: randomisation.verdict === 'reject' && o.randomisationPolicy === 'reject',
      };
    },
  );

  /**
   * A recall or withdrawal: `decide` says what changes, refusing what may not; it runs once to
   * refuse early and again inside the transaction on what is stored then, so a concurrent write
   * can neither undo it nor be undone by it. Answered 200 with what changed, which is stored and
   * published to the product's markets.
   */
  const republish = (
    decide: () => {
      markets: string[];
      change: { type: 'product'; product: Product } | { type: 'batch'; batch: Batch };
    },
  ): WriteOutcome => ({
    status: 200,
    markets: decide().markets,
    apply(evidenceSeq) {
      const { markets, change } = decide();
      if (change.type === 'product') store.putProduct(change.product);
      else store.putBatch(change.batch);
      store.publish(markets, { ...change, evidenceSeq });
      return change.type === 'product' ? { product: change.product } : { batch: change.batch };
    },
  });

  /** Recall and withdrawal are irreversible; a withdrawal may still follow a recall. */
  const closeBatch = (status: 'RECALLED' | 'WITHDRAWN') =>
    signedWrite((client, body, request) => {
      const { productCode: code, batch: batchId } = request.params as BatchParams;
      const { reason } = parseReason(body);
      return republish(() => {
        const { product, batch } = ownBatch(client, code, batchId);
        if (batch.status === 'WITHDRAWN' || batch.status === status) {
          throw new BatchClosed(`Batch ${batchId} is already ${batch.status.toLowerCase()}`);
        }
        const updated: Batch = { ...batch, status, reason, updatedAt: new Date().toISOString() };
        return { markets: product.markets, change: { type: 'batch', batch: updated } };
      });
    });
  app.post('/v1/products/:productCode/batches/:batch/recall', writeOf('recallBatch'), closeBatch('RECALLED'));
  app.post('/v1/products/:productCode/batches/:batch/withdraw', writeOf('withdrawBatch'), closeBatch('WITHDRAWN'));

  app.post(
    '/v1/products/:productCode/withdraw',
    writeOf('withdrawProduct'),
    signedWrite((client, body, request) => {
      const { productCode: code } = request.params as { productCode: string };
      const { reason } = parseReason(body);
      return republish(() => {
        const product = ownProduct(client, code);
        if (product.status === 'WITHDRAWN') throw new BatchClosed(`Product ${code} is already withdrawn`);
        const updated: Product = {
          ...product,
          status: 'WITHDRAWN',
          withdrawnReason: reason,
          updatedAt: new Date().toISOString(),
        };
        return { markets: product.markets, change: { type: 'product', product: updated } };
      });
    }),
  );

  app.get<{ Querystring: AlertsQuery }>(
    '/v1/alerts',
    { schema: hubContract.routeSchema('getAlerts') },
    async (request) => {
      const query = alertQueryOf(request.query);
      if (query.productCode !== undefined) ownProduct(request.client, query.productCode);
      // Who raised each alert is not the owner's to know: `reporter` stands for it (hub-store.ts).
      return store.alertsOf(request.client.org, query);
    },
  );

  app.get<{ Params: BatchParams }>(
    '/v1/products/:productCode/batches/:batch',
    { schema: hubContract.routeSchema('getBatch') },
    async (request) => ({ batch: ownBatch(request.client, request.params.productCode, request.params.batch).batch }),
  );

  app.get<{ Params: { productCode: string } }>(
    '/v1/products/:productCode',
    { schema: hubContract.routeSchema('getProduct') },
    async (request) => ({ product: ownProduct(request.client, request.params.productCode) }),
  );
}
