import type { JWK } from 'jose';
import {
  decodePackRows,
  type FeedRecord,
  type FeedRecordEntry,
  type PackRow,
  type SnapshotLine,
} from '../../common/src/feed-format.ts';
import { HashChain } from '../../common/src/hash-chain.ts';
import { type Database, Store } from '../../common/src/store.ts';
import { FeedIntegrityError } from './errors.ts';

/** A product as a node needs it to answer: its markets and whether it is withdrawn. */
export interface ReplicaProduct {
  productCode: string;
  name: string;
  markets: string[];
  status: 'ACTIVE' | 'WITHDRAWN';
  owner: string;
}

export interface ReplicaBatch {
  expiry: string;
  expiryDate: string;
  status: 'ACTIVE' | 'RECALLED' | 'WITHDRAWN';
  reason?: string;
}

/** Key: product code + serial. */
export type ReplicaPack = PackRow;

/** Where the replica stands in the market's feed: the last applied record and its hash. */
export interface Checkpoint {
  seq: number;
  hash: string;
}

/** What the replica applies: a feed record, or a snapshot line that carries one product, batch, client or key set. */
export type ReplicaChange =
  | FeedRecord
  | Extract<SnapshotLine, { type: 'product' | 'batch' | 'client-disabled' | 'signing-keys' }>;

/** The hub's token signing keys as the replica holds them; `seq`-independent tag for caches. */
export interface SigningKeySet {
  keys: JWK[];
  tag: string;
}

/**
 * A node's LMDB replica of one market: products, batches, packs, and the checkpoint of the
 * feed, always written in the same transaction as the data it describes, so a node killed at
 * any moment restarts exactly after the last record it applied.
 */
export class Replica {
  readonly store: Store;
  readonly products: Database<ReplicaProduct, string>;
  readonly batches: Database<ReplicaBatch, string>;
  readonly packs: Database<ReplicaPack, string>;
  /** The deny-list: clients onboarding staff disabled, whose tokens this market refuses. */
  readonly disabledClients: Database<{ at?: string }, string>;
  private readonly meta: Database<Checkpoint, string>;
  private readonly keys: Database<SigningKeySet, string>;
  /** The newest checkpoint of the hub's evidence log that log-witness.ts checked (`witnessed`). */
  private readonly evidence: Database<string, string>;
  /** The last pack key a snapshot load appended (see loadPacks). */
  private lastLoaded = '';

  constructor(path: string) {
    this.store = Store.open({ path });
    this.products = this.store.db('products');
    this.batches = this.store.db('batches');
    this.packs = this.store.db('packs');
    this.disabledClients = this.store.db('disabled-clients');
    this.meta = this.store.db('meta');
    this.keys = this.store.db('signing-keys');
    this.evidence = this.store.db('evidence-checkpoints', { encoding: 'string' });
  }

  /** The newest checkpoint the node found signed and consistent with those before it. */
  witnessedCheckpoint(): string | undefined {
    return this.evidence.get('witnessed');
  }

  /** Keeps a checkpoint the witness checked. */
  keepWitnessedCheckpoint(note: string): Promise<void> {
    return this.store.transaction(() => this.evidence.putSync('witnessed', note));
  }

  product(code: string): ReplicaProduct | undefined {
    return this.products.get(code);
  }

  batch(code: string, batch: string): ReplicaBatch | undefined {
    return this.batches.get(batchKey(code, batch));
  }

  pack(code: string, serial: string): ReplicaPack | undefined {
    return this.packs.get(code + serial);
  }

  /** Whether onboarding staff disabled the client (the market's deny-list, from the feed). */
  isDisabled(clientId: string): boolean {
    return this.disabledClients.get(clientId) !== undefined;
  }

  packCount(): number {
    return (this.packs.getStats() as { entryCount: number }).entryCount;
  }

  /** The hub's token signing keys, as the feed last delivered them. */
  signingKeys(): SigningKeySet | undefined {
    return this.keys.get('current');
  }

  checkpoint(): Checkpoint | undefined {
    return this.meta.get('checkpoint');
  }

  /**
   * Applies feed records in one transaction with the new checkpoint, after checking that they
   * continue the chain: consecutive sequence numbers, each linked to the previous hash, each
   * hash matching its content. Throws FeedIntegrityError (and applies nothing) otherwise.
   */
  async applyRecords(records: FeedRecordEntry[]): Promise<Checkpoint> {
    let next: Checkpoint | undefined;
    await this.store.transaction(() => {
      let at = this.checkpoint() ?? { seq: 0, hash: '' };
      for (const r of records) {
        if (r.seq !== at.seq + 1)
          throw new FeedIntegrityError(`gap in the feed: expected record ${at.seq + 1}, got ${r.seq}`);
        if (at.hash && r.prev !== at.hash)
          throw new FeedIntegrityError(`record ${r.seq} does not link to record ${at.seq}`);
        if (HashChain.hash(r.seq, r.prev, r.body) !== r.hash)
          throw new FeedIntegrityError(`record ${r.seq} does not match its hash`);
        this.applyBody(r.body);
        at = { seq: r.seq, hash: r.hash };
      }
      this.meta.putSync('checkpoint', at);
      next = at;
    });
    return next!;
  }

  /** Inside a write transaction. */
  applyBody(body: ReplicaChange): void {
    switch (body.type) {
      case 'product': {
        const p = body.product;
        this.products.putSync(p.productCode, {
          productCode: p.productCode,
          name: p.name,
          markets: p.markets,
          status: p.status,
          owner: p.owner,
        });
        return;
      }
      case 'batch': {
        const b = body.batch;
        this.batches.putSync(batchKey(b.productCode, b.batch), {
          expiry: b.expiry,
          expiryDate: b.expiryDate,
          status: b.status,
          ...(b.reason ? { reason: b.reason } : {}),
        });
        return;
      }
      case 'pack-state': {
        const key = body.productCode + body.serial;
        const current = this.packs.get(key);
        if (!current) return;
        this.packs.putSync(key, { b: current.b, s: body.state, ...(body.by ? { by: body.by, at: body.at } : {}) });
        return;
      }
      case 'client-disabled':
        this.disabledClients.putSync(body.clientId, 'at' in body && body.at ? { at: body.at } : {});
        return;
      case 'signing-keys':
        this.keys.putSync('current', {
          keys: body.keys,
          tag: body.keys
            .map((k) => k.kid)
            .sort()
            .join(' '),
        });
        return;
      case 'packs': {
        const pack: ReplicaPack = { b: body.batch, s: 'ACTIVE' };
        for (const serial of body.serials.split('\n')) this.packs.putSync(body.productCode + serial, pack);
        return;
      }
      // The packs of a product this market was just added to, as they are now (docs/domain.md §8).
      case 'pack-rows':
        decodePackRows(body.rows, (serial, pack) => this.packs.putSync(body.productCode + serial, pack));
        return;
      // The product is no longer sold here (docs/domain.md §8): the replica holds what a snapshot
      // taken now would, nothing of it, so its packs answer PRODUCT_UNKNOWN.
      case 'product-removed':
        this.removeProduct(body.productCode);
        return;
    }
  }

  /** Inside a write transaction: the product, its batches and its packs. */
  private removeProduct(code: string): void {
    this.products.removeSync(code);
    for (const key of this.batches.getKeys({ start: `${code}|`, end: `${code}}` })) this.batches.removeSync(key);
    for (const key of this.packs.getKeys({ start: code, end: `${code}\uffff` })) this.packs.removeSync(key);
  }

  /**
   * Inside a write transaction, while a snapshot is loaded into the emptied replica: the rows of
   * one of its `packs` lines. The hub sends packs in key order, so LMDB can append to the last
   * page instead of searching and splitting (MDB_APPEND), and fills pages completely. A key out
   * of order (not expected) is written the ordinary way.
   */
  loadPacks(productCode: string, rows: string): void {
    decodePackRows(rows, (serial, pack) => {
      const key = productCode + serial;
      // putSync answers false when LMDB refuses the append (a key not after the last one).
      const appended = key > this.lastLoaded && this.packs.putSync(key, pack, { append: true });
      if (appended) this.lastLoaded = key;
      else this.packs.putSync(key, pack);
    });
  }

  /** Inside a write transaction: empties the replica before a snapshot is loaded. */
  clear(): void {
    this.lastLoaded = '';
    this.products.clearSync();
    this.batches.clearSync();
    this.packs.clearSync();
    this.disabledClients.clearSync();
    this.keys.clearSync();
    this.meta.removeSync('checkpoint');
  }

  /** Inside a write transaction. */
  setCheckpoint(c: Checkpoint): void {
    this.meta.putSync('checkpoint', c);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

const batchKey = (code: string, batch: string): string => `${code}|${batch}`;
