import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { JWK } from 'jose';
import type { Transaction } from 'lmdb';
import { encodeLine, encodePackRow, type FeedRecordEntry } from '../../common/src/feed-format.ts';
import { SnapshotBusy } from './errors.ts';
import type { HubStore } from './hub-store.ts';
import { clientsDb, disabledClients } from './oauth/clients.ts';

const SHUTDOWN = Symbol('shutdown');

/** Wakes long-polling feed readers after a commit that appended to a market's feed. */
export class FeedNotifier extends EventEmitter {
  private shutDown = false;

  /** Whether the server is closing (long-polls answer at once). */
  get closing(): boolean {
    return this.shutDown;
  }

  constructor() {
    super();
    // One listener per waiting node of a market, and one per waiter for shutdown.
    this.setMaxListeners(0);
  }

  notify(markets: Iterable<string>): void {
    for (const m of markets) this.emit(m);
  }

  /** Answers every long-poll now and each later one at once: the server is closing. */
  shutdown(): void {
    this.shutDown = true;
    this.emit(SHUTDOWN);
  }

  /** Resolves when `market` gets a record, after `ms`, on `signal`, or at shutdown. */
  wait(market: string, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.shutDown) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off(market, done);
        this.off(SHUTDOWN, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.once(market, done);
      this.once(SHUTDOWN, done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * The snapshots being sent. Each holds an LMDB read transaction open for as long as it lasts, and
 * LMDB cannot reuse a page freed after that transaction began: a reader that stops reading would
 * make the store grow with every write, and enough of them would use up LMDB's reader slots. So a
 * node gets one snapshot at a time, the hub sends a bounded number at once, and a snapshot whose
 * reader has read nothing for a while is ended (the node starts it again).
 */
export class SnapshotSlots {
  private readonly byClient = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: { perClient: number; total: number }) {}

  /** Takes a slot for `client`; returns its release (call once, when the snapshot ends). */
  claim(client: string): () => void {
    const held = this.byClient.get(client) ?? 0;
    if (held >= this.limits.perClient)
      throw new SnapshotBusy('A snapshot is already being sent to this certificate; try again when it has ended');
    if (this.total >= this.limits.total)
      throw new SnapshotBusy(`The hub is sending ${this.total} snapshots; try again shortly`);
    this.byClient.set(client, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byClient.get(client) ?? 1) - 1;
      if (left > 0) this.byClient.set(client, left);
      else this.byClient.delete(client);
    };
  }
}

const PACKS_PER_LINE = 10_000;

/**
 * The current state of a market (its products, their batches and packs, its disabled clients) as NDJSON, read from one
 * LMDB read transaction so it is consistent with the feed sequence in its first line: a node
 * loads it, then follows the feed from that sequence.
 */
export function snapshotStream(
  store: HubStore,
  market: string,
  signingKeys: (read: { transaction: Transaction }) => JWK[],
): Readable {
  // Open (and if need be create) the market's feed before the read transaction starts: a database
  // created after it would be invisible to it (LMDB answers EINVAL).
  const feed = store.feed(market);
  const clients = clientsDb(store.store);
  const txn: Transaction = store.store.root.useReadTransaction();
  const opts = { transaction: txn };
  let last: FeedRecordEntry | undefined;
  for (const { value } of feed.db.getRange({ reverse: true, limit: 1, ...opts })) last = value;
  function* lines(): Generator<string> {
    try {
      yield encodeLine({ type: 'snapshot', market, seq: last?.seq ?? 0, hash: last?.hash ?? '' });
      yield encodeLine({ type: 'signing-keys', keys: signingKeys(opts) });
      let products = 0;
      let batches = 0;
      let packs = 0;
      for (const { value: product } of store.products.getRange(opts)) {
        if (!product.markets.includes(market)) continue;
        products++;
        yield encodeLine({ type: 'product', product });
        const code = product.productCode;
        for (const { value: batch } of store.batches.getRange({ start: `${code}|`, end: `${code}}`, ...opts })) {
          batches++;
          yield encodeLine({ type: 'batch', batch });
        }
        let chunk: string[] = [];
        for (const { key, value } of store.packs.getRange({ start: code, end: `${code}\uffff`, ...opts })) {
          chunk.push(encodePackRow(key.slice(14), value));
          if (chunk.length === PACKS_PER_LINE) {
            packs += chunk.length;
            yield encodeLine({ type: 'packs', productCode: code, count: chunk.length, packs: chunk.join('\n') });
            chunk = [];
          }
        }
        if (chunk.length > 0) {
          packs += chunk.length;
          yield encodeLine({ type: 'packs', productCode: code, count: chunk.length, packs: chunk.join('\n') });
        }
      }
      for (const clientId of disabledClients(clients, market, opts))
        yield encodeLine({ type: 'client-disabled', clientId });
      yield encodeLine({ type: 'end', products, batches, packs });
    } finally {
      txn.done();
    }
  }
  return Readable.from(lines());
}
