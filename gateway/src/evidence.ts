import { createHash } from 'node:crypto';
import { canonicalJson } from '../../common/src/canonical-json.ts';
import {
  appendLeaf,
  consistencyProof,
  EMPTY_ROOT,
  type Frontier,
  frontierOf,
  inclusionProof,
  leafHash,
  rangeRoot,
  rootFromFrontier,
} from '../../common/src/merkle.ts';
import type { Database, Store } from '../../common/src/store.ts';
import { EvidenceLogBroken, EvidenceProofOutOfRange } from './errors.ts';

/** One signed write as received (accepted, or refused for lack of rights), with the answer the gateway gave (the receipt). */
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
  /** The receipt as sent: status, the signed headers (not `Packtrust-Evidence`, which proves this record), body hash. */
  response: { status: number; headers: [string, string][]; bodySha256: string };
}

/**
 * A record in the log: its number (from 1; leaf index `seq - 1`) and the record. Stores written
 * before the Merkle tree also hold the old hash chain's `prev` and `hash`; they are not part of
 * the leaf, and are ignored.
 */
export interface EvidenceEntry {
  seq: number;
  body: EvidenceRecord;
}

/** What proves one record: its leaf and its path to the root of the tree of `treeSize` records. */
export interface InclusionEvidence {
  seq: number;
  leafIndex: number;
  treeSize: number;
  leafHash: Buffer;
  root: Buffer;
  inclusionProof: Buffer[];
}

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * The leaf of an entry (ARCHITECTURE.md, "Evidence"): the canonical JSON (common/src/canonical-
 * json.ts: keys sorted, no whitespace) of `{"body": record, "seq": n}`, hashed as RFC 9162 §2.1.1
 * `SHA-256(0x00 || data)`.
 */
export function leafData(entry: EvidenceEntry): Buffer {
  return Buffer.from(canonicalJson({ seq: entry.seq, body: entry.body }));
}

/**
 * The evidence log (ARCHITECTURE.md, "Evidence"): an append-only Merkle tree log in the manner
 * of RFC 9162 §2.1. Record `seq` is leaf `seq - 1`; the tree is kept as its perfect subtrees
 * (`evidence-tree`, key [level, index]), so the root of any size, inclusion proofs and
 * consistency proofs take O(log n) reads. Request bodies are kept verbatim in `evidence-bodies`,
 * and the signed checkpoints made of the tree in `evidence-checkpoints` (evidence-checkpoints.ts
 * signs them; the key is not in the store).
 *
 * What it leaves to the caller: appending inside the write transaction that makes the change the
 * record answers for (signed-write.ts), so that a record exists exactly for what was committed.
 */
export class EvidenceLog {
  private readonly records: Database<EvidenceEntry, number>;
  private readonly bodies: Database<Buffer, number>;
  private readonly tree: Database<Buffer, [number, number]>;
  private readonly checkpoints: Database<string, number>;

  constructor(store: Store) {
    this.records = store.db('evidence');
    this.bodies = store.db('evidence-bodies', { encoding: 'binary' });
    this.tree = store.db('evidence-tree', { encoding: 'binary' });
    this.checkpoints = store.db('evidence-checkpoints', { encoding: 'string' });
  }

  /** The sequence number of the newest record; 0 while the log is empty. */
  lastSeq(): number {
    for (const key of this.records.getKeys({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  /** Records in the tree: equal to {@link lastSeq} except in a store from before the tree, until {@link buildTree}. */
  treeSize(): number {
    // Level 0 holds one hash per leaf, keyed [0, index]: the last one says how many there are.
    for (const [, index] of this.tree.getKeys({
      start: [0, Number.MAX_SAFE_INTEGER],
      end: [0, -1],
      reverse: true,
      limit: 1,
    })) {
      return index + 1;
    }
    return 0;
  }

  /**
   * Inside a write transaction: appends the record as record `lastSeq() + 1`, keeps the body
   * verbatim, extends the tree, and returns the record's inclusion proof in the tree it ends.
   */
  append(record: EvidenceRecord, body: Buffer): InclusionEvidence {
    const size = this.treeSize();
    const seq = size + 1;
    const entry: EvidenceEntry = { seq, body: record };
    this.records.putSync(seq, entry);
    this.bodies.putSync(seq, body);
    return this.addLeaf(entry, size);
  }

  /**
   * Adds to the tree the records that are not in it yet: the whole log of a store written before
   * the tree existed. Runs at start-up, before the gateway listens (blocking, in pages).
   */
  buildTree(store: Store, pageSize = 10_000): number {
    let added = 0;
    for (;;) {
      const n = store.transactionSync(() => {
        let size = this.treeSize();
        let count = 0;
        for (const { value } of this.records.getRange({ start: size + 1, limit: pageSize })) {
          if (value.seq !== size + 1) throw new EvidenceLogBroken(`evidence record ${size + 1} is missing`);
          this.addLeaf(value, size);
          size++;
          count++;
        }
        return count;
      });
      added += n;
      if (n < pageSize) return added;
    }
  }

  private addLeaf(entry: EvidenceEntry, size: number): InclusionEvidence {
    const leaf = leafHash(leafData(entry));
    const { frontier, completed } = appendLeaf(frontierOf(size, this.read), size, leaf);
    for (const s of completed) this.tree.putSync([s.level, s.index], s.hash);
    return {
      seq: entry.seq,
      leafIndex: size,
      treeSize: size + 1,
      leafHash: leaf,
      root: rootFromFrontier(frontier),
      inclusionProof: inclusionProof(size, size + 1, this.read),
    };
  }

  private readonly read = (level: number, index: number): Buffer => {
    const hash = this.tree.get([level, index]);
    if (!hash) throw new EvidenceProofOutOfRange(`the evidence tree lacks subtree ${level}/${index}`);
    return hash;
  };

  /** The newest record, undefined while the log is empty. */
  last(): EvidenceEntry | undefined {
    return this.record(this.lastSeq());
  }

  record(seq: number): EvidenceEntry | undefined {
    return this.records.get(seq);
  }

  /** The request body of record `seq`, byte for byte. */
  body(seq: number): Buffer | undefined {
    return this.bodies.get(seq);
  }

  entries(fromSeq = 1): Iterable<EvidenceEntry> {
    return this.records.getRange({ start: fromSeq, snapshot: false }).map(({ value }) => value);
  }

  /** The first record from `fromSeq` whose leaf, recomputed, is not the tree's stored leaf; undefined when all are. */
  firstChangedLeaf(fromSeq: number): number | undefined {
    let expected = fromSeq;
    for (const entry of this.entries(fromSeq)) {
      if (entry.seq !== expected) return expected;
      const stored = this.leaf(entry.seq);
      if (!stored?.equals(leafHash(leafData(entry)))) return entry.seq;
      expected++;
    }
    return undefined;
  }

  /** The stored leaf hash of record `seq`. */
  leaf(seq: number): Buffer | undefined {
    return this.tree.get([0, seq - 1]);
  }

  /** The right frontier of the tree of `size` records (its perfect subtrees, largest first), from the stored tree. */
  frontier(size = this.treeSize()): Frontier {
    this.checkSize(size);
    return frontierOf(size, this.read);
  }

  /** RFC 9162 MTH of the first `size` records, from the stored tree. */
  root(size = this.treeSize()): Buffer {
    this.checkSize(size);
    return size === 0 ? EMPTY_ROOT : rangeRoot(0, size, this.read);
  }

  /** RFC 9162 §2.1.3.1: the inclusion proof of record `seq` in the tree of `size` records. */
  inclusion(seq: number, size: number): InclusionEvidence {
    this.checkSize(size);
    if (!Number.isInteger(seq) || seq < 1 || seq > size) {
      throw new EvidenceProofOutOfRange(`record ${seq} is not in a tree of ${size} records`);
    }
    return {
      seq,
      leafIndex: seq - 1,
      treeSize: size,
      leafHash: this.read(0, seq - 1),
      root: this.root(size),
      inclusionProof: inclusionProof(seq - 1, size, this.read),
    };
  }

  /** RFC 9162 §2.1.4.1: the consistency proof from the tree of `first` records to that of `second`. */
  consistency(first: number, second: number): Buffer[] {
    this.checkSize(second);
    if (!Number.isInteger(first) || first < 1 || first > second) {
      throw new EvidenceProofOutOfRange(`no consistency proof from ${first} to ${second} records`);
    }
    return consistencyProof(first, second, this.read);
  }

  private checkSize(size: number): void {
    const treeSize = this.treeSize();
    if (!Number.isInteger(size) || size < 0 || size > treeSize) {
      throw new EvidenceProofOutOfRange(`the evidence log holds ${treeSize} records, not ${size}`);
    }
  }

  // ── Checkpoints (signed by evidence-checkpoints.ts) ──

  /** Inside a write transaction: keeps a signed checkpoint of the tree of `size` records. */
  keepCheckpoint(size: number, note: string): void {
    this.checkpoints.putSync(size, note);
  }

  /** The newest checkpoint kept, as its signed note. */
  latestCheckpoint(): { size: number; note: string } | undefined {
    for (const { key, value } of this.checkpoints.getRange({ reverse: true, limit: 1 })) {
      return { size: key, note: value };
    }
    return undefined;
  }
}
