import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import type { Database } from './store.ts';

/** One link of a hash-chained log: `hash = SHA-256(seq ‖ prev ‖ canonical(body))`, hex. */
export interface ChainEntry<T> {
  seq: number;
  prev: string;
  hash: string;
  body: T;
}

export type ChainVerification =
  | { ok: true; checked: number; lastSeq: number; lastHash: string }
  | { ok: false; checked: number; firstBroken: { seq: number; reason: string } };

const GENESIS_HASH = '0'.repeat(64);

/**
 * An append-only, hash-chained log kept in one LMDB database keyed by sequence number (from 1).
 * Used by the CA's audit log, the prefix registry's audit log and the per-market change feeds (the
 * evidence log is a Merkle tree log: gateway/src/evidence.ts).
 */
export class HashChain<T> {
  constructor(readonly db: Database<ChainEntry<T>, number>) {}

  /** `canonical` is `canonicalJson(body)` when the caller has it already (one record appended to several chains). */
  static hash(seq: number, prev: string, body: unknown, canonical = canonicalJson(body)): string {
    return createHash('sha256').update(`${seq}\n${prev}\n`).update(canonical).digest('hex');
  }

  /** The newest entry, or undefined for an empty log. */
  last(): ChainEntry<T> | undefined {
    for (const { value } of this.db.getRange({ reverse: true, limit: 1 })) return value;
    return undefined;
  }

  /**
   * Appends `body` (`canonical`: its canonical JSON, if the caller has it). Must run inside a write transaction of the store (so the entry commits with
   * the change it records, and concurrent writers, even other processes, serialise on the chain).
   */
  append(body: T, canonical?: string): ChainEntry<T> {
    const last = this.last();
    const seq = (last?.seq ?? 0) + 1;
    const prev = last?.hash ?? GENESIS_HASH;
    const entry: ChainEntry<T> = { seq, prev, hash: HashChain.hash(seq, prev, body, canonical), body };
    this.db.putSync(seq, entry);
    return entry;
  }

  *entries(fromSeq = 1): Iterable<ChainEntry<T>> {
    for (const { value } of this.db.getRange({ start: fromSeq, snapshot: false })) yield value;
  }

  /**
   * Recomputes the chain from `fromSeq` and reports the first entry whose sequence, link or hash
   * does not hold. Starting past 1 trusts the stored hash of the entry before `fromSeq`.
   */
  verify(fromSeq = 1): ChainVerification {
    let expectedSeq = fromSeq;
    let prev = fromSeq > 1 ? (this.db.get(fromSeq - 1)?.hash ?? GENESIS_HASH) : GENESIS_HASH;
    let checked = 0;
    for (const { key, value } of this.db.getRange({ start: fromSeq, snapshot: false })) {
      const broken = (reason: string): ChainVerification => ({
        ok: false,
        checked,
        firstBroken: { seq: key, reason },
      });
      if (key !== expectedSeq || value.seq !== key) return broken(`expected entry ${expectedSeq}, found ${key}`);
      if (value.prev !== prev) return broken('link to the previous entry does not match its hash');
      if (HashChain.hash(value.seq, value.prev, value.body) !== value.hash) {
        return broken('content does not match the recorded hash');
      }
      prev = value.hash;
      expectedSeq++;
      checked++;
    }
    return { ok: true, checked, lastSeq: expectedSeq - 1, lastHash: prev };
  }
}
