import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { canonicalJson } from '../../common/src/canonical-json.ts';
import { encodePackRow, type FeedRecord, type PackRow } from '../../common/src/feed-format.ts';
import { type ChainEntry, HashChain } from '../../common/src/hash-chain.ts';
import { type Database, encodedOnce, putIfAbsent, Store } from '../../common/src/store.ts';
import type { components } from '../../openapi/generated/hub.ts';
import { BadRequest, FeedUnknown } from './errors.ts';
import { EvidenceLog } from './evidence.ts';
import { NonceStore } from './nonces.ts';
import { PrefixStore } from './prefix-store.ts';
import { SerialStatistics, type SerialStatisticsData } from './randomisation.ts';
import { reporterReference } from './reporters.ts';

/** Product master data as the contract defines it (openapi/hub.yaml). */
export type Product = components['schemas']['Product'];

export type Batch = components['schemas']['Batch'];
/** An alert as the hub keeps it, with who raised it (`raisedBy`). */
export type StoredAlert = components['schemas']['StoredAlert'];
/** An alert as the owner of its product reads it: a pseudonymous `reporter` for `raisedBy` (reporters.ts). */
export type OwnerAlert = components['schemas']['OwnerAlert'];
/** The hub's decision on one pack event, kept by transaction id: a repeated event gets the same answer. */
export type PackDecision = components['schemas']['PackEventResult'];

/** A decision kept by the client's transaction id, with the request it answered (`productCode|serial|op`). */
export interface KeptPackDecision {
  result: PackDecision;
  request: string;
}

/**
 * Which of an owner's alerts (GET /v1/alerts), or of a market's (GET /v1/market-alerts), a page holds: `from` ≤ `raisedAt` < `to`, as ISO
 * 8601 UTC with milliseconds (the form alerts are kept in), and the pack's product code and batch,
 * and the alert code, when given; `cursor` is a page's `next`.
 */
export interface AlertQuery {
  limit: number;
  from?: string;
  to?: string;
  productCode?: string;
  batch?: string;
  code?: StoredAlert['code'];
  cursor?: string;
}

/** The most alerts one page looks at, however few of them its filters keep. */
export const ALERTS_SCANNED_PER_PAGE = 10_000;

/** Packs per feed record: big enough to keep the feed short, small enough to hash and ship quickly. */
export const PACKS_PER_FEED_RECORD = 10_000;

/** What callers outside the store may do with one of its databases: read it. */
type ReadOnlyDatabase<V> = Pick<Database<V, string>, 'get' | 'getRange' | 'getCount'>;

/**
 * Named databases besides the feeds: 17 of the hub's (10 here, 4 of the evidence log, 1 of the
 * nonces, 2 of the prefix registry), 3 of the OAuth provider's own (`oauth-audit`,
 * `oauth-grant-index`, `oauth-signing-keys`) and one per oidc-provider model
 * (`oauth-Client`, `oauth-ReplayDetection`, … 14 in oidc-provider 9): 34 today, with room to grow.
 * LMDB counts the databases a process opens against `maxDbs`, not those in the file.
 */
const FIXED_DATABASES = 64;

/**
 * The hub's LMDB environment: master data, packs, the evidence log (evidence.ts), the nonces of
 * accepted signatures (nonces.ts), alerts, the prefix registry (prefix-store.ts), and a
 * hash-chained feed per market. Callers use its verbs; the key layouts (`product|batch`, product
 * code followed by the serial, `client|txId`) stay in here.
 *
 * Only the configured markets have a feed: a market is never created by what a client sends
 * (docs/operations.md, "Markets"), so the number of databases is fixed when the store opens.
 * Methods marked "inside a write transaction" run in {@link HubStore.transaction}.
 */
export class HubStore {
  /** The LMDB environment, shared with the OAuth provider's databases. */
  readonly store: Store;
  readonly evidence: EvidenceLog;
  /** The nonces of accepted request signatures (replay protection). */
  readonly nonces: NonceStore;
  private readonly productDb: Database<Product, string>;
  /** Key: product code | batch id. */
  private readonly batchDb: Database<Batch, string>;
  /** Key: product code (14 digits) followed by the serial. */
  private readonly packDb: Database<PackRow, string>;
  /** Per product code: the statistics of all its serials (randomisation.ts), updated with each upload. */
  private readonly serialStatisticsDb: Database<SerialStatisticsData, string>;
  /** Decisions by client transaction id (key: client id | txId): a repeated event gets the same answer. */
  private readonly packTxDb: Database<KeptPackDecision, string>;
  /** Key: owner (or "-" for unknown products) | raisedAt | id. */
  private readonly alerts: Database<StoredAlert, string>;
  private readonly alertIds: Database<string, string>;
  /** Key: market | raisedAt | id; value: the alert's key in `alerts`. */
  private readonly alertsByMarket: Database<string, string>;
  /** The key of the owners' reporter references (reporters.ts), made when the store is first opened. */
  private readonly reporterKey: Buffer;
  /** Per market: the key ids last published on its feed as `signing-keys`. */
  private readonly publishedKeys: Database<string, string>;
  /** The GS1 company prefixes and their owners (the rules are in prefixes.ts). */
  readonly prefixes: PrefixStore;
  private readonly feeds = new Map<string, HashChain<FeedRecord>>();
  /** The markets this hub serves (the configuration's `markets`). */
  readonly markets: ReadonlySet<string>;

  constructor(path: string, markets: readonly string[]) {
    this.markets = new Set(markets);
    this.store = Store.open({ path, maxDbs: FIXED_DATABASES + this.markets.size });
    this.productDb = this.store.db('products');
    this.batchDb = this.store.db('batches');
    this.packDb = this.store.db('packs');
    // Named for the format of its records: a store with an earlier format gets them again from its packs.
    this.serialStatisticsDb = this.store.db('product-serial-statistics');
    this.evidence = new EvidenceLog(this.store);
    this.nonces = new NonceStore(this.store);
    this.alerts = this.store.db('alerts');
    this.packTxDb = this.store.db('pack-transactions');
    this.alertIds = this.store.db('alert-ids', { encoding: 'string' });
    this.publishedKeys = this.store.db('published-signing-keys', { encoding: 'string' });
    this.prefixes = new PrefixStore(this.store);
    this.alertsByMarket = this.store.db('alerts-by-market', { encoding: 'string' });
    // Secrets of the hub that no route serves, here rather than in the configuration so a
    // restored backup keeps its owners' reporter references (docs/domain.md §5, "Who raised an alert").
    const secrets = this.store.db<string, string>('hub-secrets', { encoding: 'string' });
    this.store.transactionSync(() => {
      putIfAbsent(secrets, 'reporter-key', randomBytes(32).toString('base64url'));
      // A store from before the market index gets it once, from the alerts it holds.
      if (this.alertsByMarket.getCount() === 0) {
        for (const { key, value } of this.alerts.getRange()) this.alertsByMarket.putSync(marketKey(value), key);
      }
      // A store from before the per-product serial statistics gets them once, from its packs.
      if (this.serialStatisticsDb.getCount() === 0) this.backfillSerialStatistics();
    });
    this.reporterKey = Buffer.from(secrets.get('reporter-key')!, 'base64url');
  }

  // Read-only views, for the snapshot encoder (feed.ts) and for tests that look inside.
  get products(): ReadOnlyDatabase<Product> {
    return this.productDb;
  }
  get batches(): ReadOnlyDatabase<Batch> {
    return this.batchDb;
  }
  get packs(): ReadOnlyDatabase<PackRow> {
    return this.packDb;
  }
  get packTx(): ReadOnlyDatabase<KeptPackDecision> {
    return this.packTxDb;
  }

  /** Runs `action` in one write transaction; resolves after the durable commit (common/src/store.ts). */
  transaction<T>(action: () => T): Promise<T> {
    return this.store.transaction(action);
  }

  // ── Master data and packs ──

  product(code: string): Product | undefined {
    return this.productDb.get(code);
  }

  /** Inside a write transaction. */
  putProduct(product: Product): void {
    this.productDb.putSync(product.productCode, product);
  }

  /** The products whose code falls under `prefix`, whatever their indicator digit. */
  *productsUnder(prefix: string): Generator<Product> {
    for (let indicator = 0; indicator <= 9; indicator++) {
      const start = `${indicator}${prefix}`;
      for (const { value } of this.productDb.getRange({ start, end: `${start}\uffff` })) yield value;
    }
  }

  batch(productCode: string, batch: string): Batch | undefined {
    return this.batchDb.get(batchKey(productCode, batch));
  }

  /** Inside a write transaction. */
  putBatch(batch: Batch): void {
    this.batchDb.putSync(batchKey(batch.productCode, batch.batch), batch);
  }

  /**
   * Inside a write transaction: registers each serial of `productCode` as an ACTIVE pack of
   * `batch`, in one pass that checks and writes (a pack that exists is not overwritten). Returns
   * the serials that were registered already; when there are any, the caller throws, and the
   * transaction writes nothing.
   */
  registerPacks(productCode: string, batch: string, serials: readonly string[]): string[] {
    const taken: string[] = [];
    const pack = encodedOnce<PackRow, string>(this.packDb, { b: batch, s: 'ACTIVE' });
    for (const serial of serials) if (!putIfAbsent(this.packDb, packKey(productCode, serial), pack)) taken.push(serial);
    return taken;
  }

  /** The statistics of every serial registered for `productCode` (empty when it has none). */
  serialStatistics(productCode: string): SerialStatistics {
    const data = this.serialStatisticsDb.get(productCode);
    return data ? SerialStatistics.fromJSON(data) : SerialStatistics.EMPTY;
  }

  /** Inside a write transaction, with the packs it counts. */
  putSerialStatistics(productCode: string, statistics: SerialStatistics): void {
    this.serialStatisticsDb.putSync(productCode, statistics.toJSON());
  }

  /** Inside a write transaction: every product's statistics from its packs, read in key order (product by product). */
  private backfillSerialStatistics(): void {
    let product: string | undefined;
    let statistics = SerialStatistics.EMPTY;
    let serials: string[] = [];
    const flush = () => {
      statistics = statistics.merge(SerialStatistics.of(serials));
      serials = [];
    };
    for (const key of this.packDb.getKeys()) {
      const code = key.slice(0, PRODUCT_CODE_LENGTH);
      if (code !== product) {
        if (product !== undefined) {
          flush();
          this.putSerialStatistics(product, statistics);
        }
        product = code;
        statistics = SerialStatistics.EMPTY;
      }
      serials.push(key.slice(PRODUCT_CODE_LENGTH));
      if (serials.length === 100_000) flush();
    }
    if (product !== undefined) {
      flush();
      this.putSerialStatistics(product, statistics);
    }
  }

  pack(productCode: string, serial: string): PackRow | undefined {
    return this.packDb.get(packKey(productCode, serial));
  }

  /** Inside a write transaction: the pack's new state, decided by compare-and-set (pack-events.ts). */
  putPack(productCode: string, serial: string, pack: PackRow): void {
    this.packDb.putSync(packKey(productCode, serial), pack);
  }

  /** The decision on a client's transaction, if one was made. */
  packDecision(clientId: string, txId: string): KeptPackDecision | undefined {
    return this.packTxDb.get(`${clientId}|${txId}`);
  }

  /** Inside a write transaction. */
  keepPackDecision(clientId: string, txId: string, decision: KeptPackDecision): void {
    this.packTxDb.putSync(`${clientId}|${txId}`, decision);
  }

  // ── Feeds ──

  /** Whether this hub serves `market` (it has, or will have, a feed). */
  serves(market: string): boolean {
    return this.markets.has(market);
  }

  /**
   * Markets that have a feed in the store but are not configured (any more): their feeds are
   * kept as they are, never opened, appended to or served.
   */
  dormantMarkets(): string[] {
    const out: string[] = [];
    for (const name of this.store.root.getKeys({ start: 'feed-', end: 'feed.' })) {
      const market = String(name).slice('feed-'.length);
      if (!this.serves(market)) out.push(market);
    }
    return out;
  }

  /** The feed of a configured market; throws FeedUnknown (404) for any other. */
  feed(market: string): HashChain<FeedRecord> {
    let chain = this.feeds.get(market);
    if (!chain) {
      if (!this.serves(market)) throw new FeedUnknown(`This hub serves no market ${market}`);
      chain = new HashChain(this.store.db<ChainEntry<FeedRecord>, number>(`feed-${market}`));
      this.feeds.set(market, chain);
    }
    return chain;
  }

  /**
   * Inside a write transaction: a change to be applied by every market of the product. Markets
   * no longer configured (a product registered while they were) are skipped: they have no feed.
   */
  publish(markets: Iterable<string>, record: FeedRecord): void {
    let canonical: string | undefined;
    for (const market of markets) {
      if (!this.serves(market)) continue;
      // Made canonical once for all the markets (a record of packs holds 10,000 serials).
      canonical ??= canonicalJson(record);
      this.feed(market).append(record, canonical);
    }
  }

  /** How many packs are registered for `productCode`. */
  packCountOf(productCode: string): number {
    return this.packDb.getCount({ start: productCode, end: `${productCode}\uffff` });
  }

  /**
   * Inside a write transaction: gives the nodes of `markets`, where `product` is not sold until
   * now, all they need to answer for it (docs/domain.md §8): its batches, its packs as they are
   * now in `pack-rows` records of at most {@link PACKS_PER_FEED_RECORD} (states and who set them
   * included), then the product record last, so a node lists the product only once it holds its
   * packs. Each page is read and encoded once, whatever the number of markets; the caller bounds
   * the number of packs (routes/manufacturer.ts).
   */
  publishWholeProduct(markets: readonly string[], product: Product, evidenceSeq: number): void {
    const code = product.productCode;
    const served = markets.filter((m) => this.serves(m));
    if (served.length === 0) return;
    for (const { value: batch } of this.batchDb.getRange({ start: `${code}|`, end: `${code}}` }))
      this.publish(served, { type: 'batch', batch, evidenceSeq });
    let rows: string[] = [];
    const flush = () => {
      this.publish(served, {
        type: 'pack-rows',
        productCode: code,
        count: rows.length,
        rows: rows.join('\n'),
        evidenceSeq,
      });
      rows = [];
    };
    for (const { key, value } of this.packDb.getRange({ start: code, end: `${code}\uffff` })) {
      rows.push(encodePackRow(key.slice(code.length), value));
      if (rows.length === PACKS_PER_FEED_RECORD) flush();
    }
    if (rows.length > 0) flush();
    this.publish(served, { type: 'product', product, evidenceSeq });
  }

  /**
   * Inside a write transaction: puts the token signing keys on the feed of each market whose nodes
   * have not been sent this key set yet (at a rotation, and at start for a newly served market).
   */
  publishSigningKeys(markets: Iterable<string>, keys: JWK[]): void {
    const tag = keys
      .map((k) => k.kid)
      .sort()
      .join(' ');
    for (const market of markets) {
      if (this.publishedKeys.get(market) === tag) continue;
      this.feed(market).append({ type: 'signing-keys', keys });
      this.publishedKeys.putSync(market, tag);
    }
  }

  // ── Alerts ──

  /** Inside a write transaction: keeps an alert for its product's owner, once per id. */
  addAlert(alert: StoredAlert): boolean {
    const key = `${alert.owner ?? '-'}|${alert.raisedAt}|${alert.id}`;
    if (!putIfAbsent(this.alertIds, alert.id, key)) return false;
    this.alerts.putSync(key, alert);
    this.alertsByMarket.putSync(marketKey(alert), key);
    return true;
  }

  /**
   * One page of an owner's alerts, as the owner reads them: who raised each is replaced by a
   * pseudonymous `reporter` (reporters.ts; docs/domain.md §5, "Who raised an alert"). Paged as
   * {@link HubStore.alertPage} says.
   */
  alertsOf(owner: string, query: AlertQuery): { alerts: OwnerAlert[]; next?: string } {
    const page = this.alertPage(this.alerts, `${owner}|`, query, (alert) => alert);
    return {
      ...page,
      alerts: page.alerts.map(({ raisedBy, ...alert }) => ({
        ...alert,
        reporter: reporterReference(this.reporterKey, owner, raisedBy.clientId),
      })),
    };
  }

  /**
   * One page of the alerts raised in a market, whoever owns their product (or none does), with
   * who raised them: for the market's verification organisation only. Paged as
   * {@link HubStore.alertPage} says.
   */
  marketAlertsOf(market: string, query: AlertQuery): { alerts: StoredAlert[]; next?: string } {
    return this.alertPage(this.alertsByMarket, `${market}|`, query, (key) => this.alerts.get(key));
  }

  /**
   * One page of the alerts under `prefix` (an owner's, or a market's), newest first (by
   * `raisedAt`, then id, descending), with the filters of {@link AlertQuery}; `next` continues
   * after the page's last alert. A page ends after `limit` alerts, or after
   * {@link ALERTS_SCANNED_PER_PAGE} alerts looked at, so a narrow filter over many alerts costs a
   * bounded read per request: a page may then hold fewer than `limit` and still have a `next`.
   * The cursor is the last key read, base64url: it must be under `prefix` (refused otherwise), so
   * it reads nothing of another owner's or market's.
   */
  private alertPage<V>(
    db: Database<V, string>,
    prefix: string,
    query: AlertQuery,
    alertOf: (value: V) => StoredAlert | undefined,
  ): { alerts: StoredAlert[]; next?: string } {
    // Newest first: the range is read backwards from its highest key; `to` excluded, `from` included.
    let start = query.to === undefined ? `${prefix}\uffff` : `${prefix}${query.to}`;
    const end = query.from === undefined ? prefix : `${prefix}${query.from}`;
    let exclusiveStart = false;
    if (query.cursor !== undefined) {
      const after = Buffer.from(query.cursor, 'base64url').toString('utf8');
      if (!after.startsWith(prefix) || Buffer.from(after).toString('base64url') !== query.cursor) {
        throw new BadRequest('The cursor is not one of your alert pages; start again without it');
      }
      if (after < start) {
        start = after;
        exclusiveStart = true;
      }
    }
    const alerts: StoredAlert[] = [];
    let scanned = 0;
    let last: string | undefined;
    for (const { key, value } of db.getRange({ start, end, reverse: true, exclusiveStart })) {
      if (alerts.length === query.limit || scanned === ALERTS_SCANNED_PER_PAGE) {
        return { alerts, next: Buffer.from(last!).toString('base64url') };
      }
      scanned++;
      last = key;
      const alert = alertOf(value);
      if (alert === undefined) continue;
      if (query.productCode !== undefined && alert.pack.productCode !== query.productCode) continue;
      if (query.batch !== undefined && alert.pack.batch !== query.batch) continue;
      if (query.code !== undefined && alert.code !== query.code) continue;
      alerts.push(alert);
    }
    return { alerts };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

const marketKey = (alert: Pick<StoredAlert, 'market' | 'raisedAt' | 'id'>): string =>
  `${alert.market}|${alert.raisedAt}|${alert.id}`;
const batchKey = (productCode: string, batch: string): string => `${productCode}|${batch}`;
/** Product codes are GTIN-14s, so a pack's key is 14 digits followed by the serial. */
const PRODUCT_CODE_LENGTH = 14;
const packKey = (productCode: string, serial: string): string => productCode + serial;
