import type { ChangeRequest } from '../../common/src/pack-rules.ts';
import type { Database, Store } from '../../common/src/store.ts';

/** A pack with a change waiting for the hub at this node: which request, which operation. */
export interface PendingPack {
  /** The request: `clientId|txId`. */
  key: string;
  op: ChangeRequest['op'];
}

/**
 * The packs that have a change kept in the node's outbox, waiting for the hub (ARCHITECTURE.md,
 * "Pending packs and final refusals at the node"): such a pack answers `PENDING` and takes no
 * other change here until the hub has decided. Kept in LMDB (`pending-packs`) in the same
 * transactions as the outbox, and mirrored in memory, because verification asks for every pack
 * and the set is small. Which change waits, and when it is decided, is StateChanges' business.
 */
export class PendingPacks {
  private readonly db: Database<PendingPack, string>;
  private readonly mirror = new Map<string, PendingPack>();

  constructor(store: Store) {
    this.db = store.db('pending-packs');
    for (const { key, value } of this.db.getRange()) this.mirror.set(key, value);
  }

  /** The change waiting for the hub for this pack at this node, if any. */
  of(productCode: string, serial: string): PendingPack | undefined {
    return this.mirror.size === 0 ? undefined : this.mirror.get(productCode + serial);
  }

  /**
   * Inside a write transaction: marks the pack for `marker`'s request, unless a change of it is
   * marked already (another request may have been kept while this one waited for the hub); then
   * that marker is returned and nothing is written. Call `marked` once the transaction committed.
   */
  markUnlessMarked(productCode: string, serial: string, marker: PendingPack): PendingPack | undefined {
    const stored = this.db.get(productCode + serial);
    if (stored) return stored;
    this.db.putSync(productCode + serial, marker);
    return undefined;
  }

  /** After the commit that marked the pack: verification answers `PENDING` for it from now on. */
  marked(productCode: string, serial: string, marker: PendingPack): void {
    this.mirror.set(productCode + serial, marker);
  }

  /** Inside a write transaction: the hub decided the request `key`; its pack is no longer pending for it. */
  release(productCode: string, serial: string, key: string): void {
    const packKey = productCode + serial;
    if (this.db.get(packKey)?.key !== key) return;
    this.db.removeSync(packKey);
    this.mirror.delete(packKey);
  }
}
