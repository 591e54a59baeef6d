import { type Database, removeExpired, type Store } from '../../common/src/store.ts';

/**
 * The nonces of accepted request signatures, per client certificate (`nonces`, key
 * `fingerprint:nonce`, value: until when it is remembered). A nonce only has to be remembered
 * while a signature carrying it could still be accepted (the `created` window), so expired ones
 * are removed. What it leaves to the caller (signed-write.ts): claiming inside the write's own
 * transaction, so that a replay and the write it repeats cannot both commit.
 */
export class NonceStore {
  private readonly db: Database<number, string>;

  constructor(private readonly store: Store) {
    this.db = store.db('nonces');
  }

  /** Whether a signature nonce of this client was accepted before (and has not aged out). */
  seen(fingerprint: string, nonce: string, now = Date.now()): boolean {
    const expires = this.db.get(`${fingerprint}:${nonce}`);
    return expires !== undefined && expires > now;
  }

  /** Inside a write transaction: claims the nonce until `expiresAt`; false when already claimed. */
  claim(fingerprint: string, nonce: string, expiresAt: number, now = Date.now()): boolean {
    if (this.seen(fingerprint, nonce, now)) return false;
    this.db.putSync(`${fingerprint}:${nonce}`, expiresAt);
    return true;
  }

  /**
   * Removes the nonces that expired before `now`, in small transactions (common/src/store.ts
   * `removeExpired`); returns how many were removed.
   */
  prune(now = Date.now()): Promise<number> {
    return removeExpired(this.store, this.db, (expires) => expires <= now);
  }
}
