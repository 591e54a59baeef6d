import { createHash } from 'node:crypto';
import { type ChainEntry, HashChain } from '../../common/src/hash-chain.ts';
import { type Database, putIfAbsent, removeExpired, Store } from '../../common/src/store.ts';
import type { components } from '../../openapi/generated/hub.ts';
import { FeedUnknown } from './errors.ts';

/** Product master data as the contract defines it (openapi/hub.yaml). */
export type Product = components['schemas']['Product'];

/** One accepted write, as received, with the answer the gateway gave (the receipt). */
export interface EvidenceRecord {
  receivedAt: string;
  method: string;
  targetUri: string;
  /** Every request header as received, in order, as [name, value] pairs. */
  headers: [string, string][];
  bodySha256: string;
  bodyLength: number;
  signatureLabel: string;
  nonce: string;
  /** The client's certificate chain as presented, DER base64, leaf first. */
  clientCertificates: string[];
  clientFingerprint: string;
  org: string;
  response: { status: number; headers: [string, string][]; bodySha256: string };
}

export type Batch = components['schemas']['Batch'];
export type StoredAlert = components['schemas']['StoredAlert'];

/** A pack as the hub keeps it (compact: millions of these). */
export interface PackRecord {
  /** Batch id. */
  b: string;
  /** Pack state; ACTIVE until decommissioned. */
  s: string;
  /** Who decommissioned it (client id, location) and when (epoch ms): what an undo is checked against. */
  by?: { clientId: string; location: string };
  at?: number;
}

/** A change the verifier nodes of a market apply. */
export type FeedRecord =
  | { type: 'product'; product: Product; evidenceSeq: number }
  /** An OAuth client disabled by onboarding staff: the market's nodes refuse its tokens at once. */
  | { type: 'client-disabled'; clientId: string; at: string }
  | { type: 'batch'; batch: Batch; evidenceSeq: number }
  | {
      type: 'pack-state';
      productCode: string;
      serial: string;
      state: string;
      by?: { clientId: string; location: string };
      at?: number;
      txId: string;
    }
  | {
      type: 'packs';
      productCode: string;
      batch: string;
      count: number;
      /** The serials, separated by LF: one string encodes and hashes far faster than 10,000. */
      serials: string;
      evidenceSeq: number;
    };

/** Packs per feed record: big enough to keep the feed short, small enough to hash and ship quickly. */
export const PACKS_PER_FEED_RECORD = 10_000;

/**
 * Named databases besides the feeds: 9 here, 4 of the OAuth provider's own (`oauth-audit`,
 * `oauth-grant-index`, `oauth-signing-keys`, `oauth-meta`) and one per oidc-provider model
 * (`oauth-Client`, `oauth-ReplayDetection`, … 14 in oidc-provider 9): 27 today, with room to grow.
 * LMDB counts the databases a process opens against `maxDbs`, not those in the file.
 */
const FIXED_DATABASES = 64;

/**
 * The hub's LMDB environment: master data, the evidence log (records hash-chained, bodies kept
 * verbatim beside them), the nonces of accepted signatures, and a hash-chained feed per market.
 *
 * Only the configured markets have a feed: a market is never created by what a client sends
 * (docs/operations.md, "Markets"), so the number of databases is fixed when the store opens.
 */
export class HubStore {
  readonly store: Store;
  readonly products: Database<Product, string>;
  readonly batches: Database<Batch, string>;
  /** Key: product code (14 digits) followed by the serial. */
  readonly packs: Database<PackRecord, string>;
  readonly evidence: HashChain<EvidenceRecord>;
  private readonly evidenceBodies: Database<Buffer, number>;
  private readonly nonces: Database<number, string>;
  /** Decisions by client transaction id: a repeated event gets the same answer. */
  readonly packTx: Database<Record<string, unknown>, string>;
  /** Key: owner (or "-" for unknown products) | raisedAt | id. */
  readonly alerts: Database<StoredAlert, string>;
  private readonly alertIds: Database<string, string>;
  private readonly feeds = new Map<string, HashChain<FeedRecord>>();
  /** The markets this hub serves (the configuration's `markets`). */
  readonly markets: ReadonlySet<string>;

  constructor(path: string, markets: readonly string[]) {
    this.markets = new Set(markets);
    this.store = Store.open({ path, maxDbs: FIXED_DATABASES + this.markets.size });
    this.products = this.store.db('products');
    this.batches = this.store.db('batches');
    this.packs = this.store.db('packs');
    this.evidence = new HashChain(this.store.db<ChainEntry<EvidenceRecord>, number>('evidence'));
    this.evidenceBodies = this.store.db('evidence-bodies', { encoding: 'binary' });
    this.nonces = this.store.db('nonces');
    this.alerts = this.store.db('alerts');
    this.packTx = this.store.db('pack-transactions');
    this.alertIds = this.store.db('alert-ids', { encoding: 'string' });
  }

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

  /** Whether a signature nonce of this client was accepted before (and has not aged out). */
  nonceSeen(fingerprint: string, nonce: string, now = Date.now()): boolean {
    const expires = this.nonces.get(`${fingerprint}:${nonce}`);
    return expires !== undefined && expires > now;
  }

  /** Inside a write transaction: claims the nonce until `expiresAt`; false when already claimed. */
  claimNonce(fingerprint: string, nonce: string, expiresAt: number, now = Date.now()): boolean {
    if (this.nonceSeen(fingerprint, nonce, now)) return false;
    this.nonces.putSync(`${fingerprint}:${nonce}`, expiresAt);
    return true;
  }

  /**
   * Removes the nonces that expired before `now`: a nonce only has to be remembered while a
   * signature carrying it could still be accepted (the `created` window). In small
   * transactions (common/src/store.ts `removeExpired`); returns how many were removed.
   */
  pruneNonces(now = Date.now()): Promise<number> {
    return removeExpired(this.store, this.nonces, (expires) => expires <= now);
  }

  /** Inside a write transaction: appends the evidence record and keeps the body verbatim. */
  appendEvidence(record: EvidenceRecord, body: Buffer): ChainEntry<EvidenceRecord> {
    const entry = this.evidence.append(record);
    this.evidenceBodies.putSync(entry.seq, body);
    return entry;
  }

  evidenceBody(seq: number): Buffer | undefined {
    return this.evidenceBodies.get(seq);
  }

  /**
   * Inside a write transaction: a change to be applied by every market of the product. Markets
   * no longer configured (a product registered while they were) are skipped: they have no feed.
   */
  publish(markets: Iterable<string>, record: FeedRecord): void {
    for (const market of markets) if (this.serves(market)) this.feed(market).append(record);
  }

  /** Inside a write transaction: keeps an alert for its product's owner, once per id. */
  addAlert(alert: StoredAlert): boolean {
    const key = `${alert.owner ?? '-'}|${alert.raisedAt}|${alert.id}`;
    if (!putIfAbsent(this.alertIds, alert.id, key)) return false;
    this.alerts.putSync(key, alert);
    return true;
  }

  alertsOf(owner: string, limit: number, productCode?: string): StoredAlert[] {
    const out: StoredAlert[] = [];
    for (const { value } of this.alerts.getRange({ start: `${owner}|`, end: `${owner}|\uffff` })) {
      if (productCode && value.pack.productCode !== productCode) continue;
      out.push(value);
      if (out.length >= limit) break;
    }
    return out;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

export const batchKey = (productCode: string, batch: string): string => `${productCode}|${batch}`;
export const packKey = (productCode: string, serial: string): string => productCode + serial;
