import { createHash } from 'node:crypto';
import type { JWK } from 'jose';
import type { FeedRecord, PackRow } from '../../common/src/feed-format.ts';
import { companyPrefixesOf } from '../../common/src/gs1.ts';
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

/** A GS1 company prefix (or a national agency's range of NTINs) and the organisation it belongs to. */
export interface CompanyPrefix {
  /** 4 to 12 digits, read after the indicator digit of a product code (common/src/gs1.ts). */
  prefix: string;
  org: string;
  /** When it was registered for, or moved to, this organisation. */
  since: string;
}

/** One change of the prefix registry, made by onboarding staff (`packtrust-gateway prefix`). */
export interface PrefixAuditRecord {
  time: string;
  /** Who ran the command (`cli:user@host`). */
  actor: string;
  action: 'add' | 'move' | 'remove';
  prefix: string;
  /** The owner after the change; for `remove`, the owner it had. */
  org: string;
  /** `move`: the owner before, and how many products changed owner with the prefix. */
  from?: string;
  products?: number;
}

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
  /** Key: product code (14 digits) followed by the serial; the value is what a snapshot row carries. */
  readonly packs: Database<PackRow, string>;
  readonly evidence: HashChain<EvidenceRecord>;
  private readonly evidenceBodies: Database<Buffer, number>;
  private readonly nonces: Database<number, string>;
  /** Decisions by client transaction id: a repeated event gets the same answer. */
  readonly packTx: Database<Record<string, unknown>, string>;
  /** Key: owner (or "-" for unknown products) | raisedAt | id. */
  readonly alerts: Database<StoredAlert, string>;
  private readonly alertIds: Database<string, string>;
  /** Per market: the key ids last published on its feed as `signing-keys`. */
  private readonly publishedKeys: Database<string, string>;
  /** Key: the prefix digits. No two registered prefixes overlap (gateway/src/prefixes.ts). */
  private readonly prefixes: Database<CompanyPrefix, string>;
  readonly prefixAudit: HashChain<PrefixAuditRecord>;
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
    this.publishedKeys = this.store.db('published-signing-keys', { encoding: 'string' });
    this.prefixes = this.store.db('prefixes');
    this.prefixAudit = new HashChain(this.store.db<ChainEntry<PrefixAuditRecord>, number>('prefix-audit'));
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

  /** The registry's entry for exactly these digits. */
  companyPrefix(prefix: string): CompanyPrefix | undefined {
    return this.prefixes.get(prefix);
  }

  /** The registered prefix a product code falls under: the longest one that matches. */
  prefixOf(productCode: string): CompanyPrefix | undefined {
    for (const candidate of companyPrefixesOf(productCode)) {
      const found = this.prefixes.get(candidate);
      if (found) return found;
    }
    return undefined;
  }

  /** Registered prefixes that overlap `prefix`: itself, the shorter ones it extends, the longer ones extending it. */
  prefixesOverlapping(prefix: string): CompanyPrefix[] {
    const out: CompanyPrefix[] = [];
    for (let n = 1; n < prefix.length; n++) {
      const shorter = this.prefixes.get(prefix.slice(0, n));
      if (shorter) out.push(shorter);
    }
    for (const { value } of this.prefixes.getRange({ start: prefix, end: `${prefix}\uffff` })) out.push(value);
    return out;
  }

  /** Every registered prefix in digit order, or an organisation's. */
  prefixList(org?: string): CompanyPrefix[] {
    const out: CompanyPrefix[] = [];
    for (const { value } of this.prefixes.getRange()) if (org === undefined || value.org === org) out.push(value);
    return out;
  }

  /** The products whose code falls under `prefix`, whatever their indicator digit. */
  *productsUnder(prefix: string): Generator<Product> {
    for (let indicator = 0; indicator <= 9; indicator++) {
      const start = `${indicator}${prefix}`;
      for (const { value } of this.products.getRange({ start, end: `${start}\uffff` })) yield value;
    }
  }

  /** Inside a write transaction: registers a prefix, or gives it its new owner. */
  putPrefix(entry: CompanyPrefix): void {
    this.prefixes.putSync(entry.prefix, entry);
  }

  /** Inside a write transaction. */
  removePrefix(prefix: string): void {
    this.prefixes.removeSync(prefix);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

export const batchKey = (productCode: string, batch: string): string => `${productCode}|${batch}`;
export const packKey = (productCode: string, serial: string): string => productCode + serial;
