import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type CheckpointSigner, openCheckpoint, signCheckpoint, verifierKey } from '../../common/src/checkpoint.ts';
import { appendLeaf, type Frontier, rootFromFrontier } from '../../common/src/merkle.ts';
import type { ReceiptEvidence } from '../../common/src/receipt-evidence.ts';
import type { Store } from '../../common/src/store.ts';
import { EvidenceKeyInvalid, EvidenceTreeTampered } from './errors.ts';
import type { EvidenceEntry, EvidenceLog, InclusionEvidence } from './evidence.ts';

/** How many of the newest records are checked against the signed tree at every start. */
const START_CHECKED_RECORDS = 10_000;

/**
 * The evidence log's notary: signs checkpoints (C2SP signed notes, common/src/checkpoint.ts) of
 * the Merkle tree with an Ed25519 key that is not in the hub store, so whoever can write the
 * store can change records but cannot sign a tree that holds the change (ARCHITECTURE.md,
 * "Evidence"). The key's name is the log's origin, so a checkpoint names the log it is of.
 */
export class EvidenceNotary {
  private readonly signer: CheckpointSigner;
  /** The tree this notary signed last (or found signed at start): the next one must be it plus one record. */
  private last: { size: number; frontier: Frontier } | undefined;
  /** The note verifier key (`<origin>+<key hash>+<key>`) that checks this notary's checkpoints. */
  readonly verifierKey: string;

  constructor(
    readonly origin: string,
    key: KeyObject,
  ) {
    if (key.asymmetricKeyType !== 'ed25519' || key.type !== 'private') {
      throw new EvidenceKeyInvalid('The evidence key must be an Ed25519 private key');
    }
    this.signer = { name: origin, key };
    this.verifierKey = verifierKey(origin, createPublicKey(key));
  }

  /** Reads the key from a PKCS#8 PEM file (the gateway's `evidenceKeyFile`). */
  static fromFile(origin: string, file: string): EvidenceNotary {
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(file));
    } catch (err) {
      throw new EvidenceKeyInvalid(`Cannot read the evidence key ${file}: ${(err as Error).message}`, { cause: err });
    }
    return new EvidenceNotary(origin, key);
  }

  /**
   * Makes a new Ed25519 key in `file` (PKCS#8 PEM, mode 0600, its directory 0700); refuses to
   * overwrite one, which would orphan every checkpoint signed so far.
   */
  static generateKeyFile(file: string): void {
    const { privateKey } = generateKeyPairSync('ed25519');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }

  /** The signed checkpoint of the tree of `size` records whose root is `root`, made now; unchecked (tests make forged ones with it). */
  sign(size: number, root: Buffer, time = new Date()): string {
    return signCheckpoint({ origin: this.origin, size, root, time }, this.signer);
  }

  /**
   * At start, before the first write. The newest kept checkpoint must be this notary's and of the
   * whole log as it stands: records added, removed or changed while the gateway was down stop the
   * start (HUB_EVIDENCE_TREE_TAMPERED; `evidence verify` says what changed). A store without any
   * checkpoint (written before the Merkle tree) gets its tree built and a first checkpoint.
   */
  open(log: EvidenceLog, store: Store): void {
    const latest = log.latestCheckpoint();
    if (!latest) {
      // Only a log written before the tree (whose records carry the old hash chain's `prev` and
      // `hash`) may be built and signed here. Records of this version always commit with their
      // checkpoint, so records without one mean the checkpoints were removed.
      const newest = log.last() as (EvidenceEntry & { prev?: unknown; hash?: unknown }) | undefined;
      if (newest && (typeof newest.prev !== 'string' || typeof newest.hash !== 'string')) {
        throw new EvidenceTreeTampered(
          `the evidence log holds ${newest.seq} records and no checkpoint: its checkpoints were removed; run \`packtrust-gateway evidence verify\``,
        );
      }
      log.buildTree(store);
      const size = log.treeSize();
      const frontier = log.frontier(size);
      if (size > 0) store.transactionSync(() => log.keepCheckpoint(size, this.sign(size, rootFromFrontier(frontier))));
      this.last = { size, frontier };
      return;
    }
    let cp: { size: number; root: Buffer };
    try {
      cp = openCheckpoint(latest.note, this.verifierKey);
    } catch (err) {
      throw new EvidenceTreeTampered(`the store's newest checkpoint is not signed by this gateway's evidence key`, {
        cause: err,
      });
    }
    const size = log.treeSize();
    const frontier = cp.size === size ? log.frontier(size) : [];
    if (cp.size !== size || log.lastSeq() !== size || !rootFromFrontier(frontier).equals(cp.root)) {
      throw new EvidenceTreeTampered(
        `the evidence log (${log.lastSeq()} records, a tree of ${size}) is not the tree of ${cp.size} records this gateway signed last: run \`packtrust-gateway evidence verify\``,
      );
    }
    // The stored tree is what was checked; the newest records must still be its leaves (older
    // ones are held by checkpoints outside: the nodes', the receipts'; `evidence verify` checks all).
    const changed = log.firstChangedLeaf(Math.max(1, size - START_CHECKED_RECORDS + 1));
    if (changed !== undefined) {
      throw new EvidenceTreeTampered(
        `evidence record ${changed} is not the leaf of the tree this gateway signed: run \`packtrust-gateway evidence verify\``,
      );
    }
    this.last = { size, frontier };
  }

  /**
   * Inside the write transaction that appended `proof`'s record: what its receipt carries
   * (`Packtrust-Evidence`), the record's leaf, its inclusion proof and a checkpoint of the tree it
   * ends, which is kept in the store too (so every write is checkpointed). That tree must be the
   * one this notary signed last plus this one record (its frontier, kept in memory, folded with
   * the leaf): a record the gateway did not append, or a tree changed under it, makes the write
   * fail and nothing is signed. (Were a commit to fail after this, the next write would fail the
   * same way, until a restart.)
   */
  receiptEvidence(log: EvidenceLog, proof: InclusionEvidence): ReceiptEvidence {
    const last = this.last ?? { size: 0, frontier: [] };
    // The tree it signed last plus this leaf, folded here from the frontier it keeps: what the
    // store's tree must be, without reading it again.
    const expected = appendLeaf(last.frontier, last.size, proof.leafHash).frontier;
    if (proof.treeSize !== last.size + 1 || !rootFromFrontier(expected).equals(proof.root)) {
      throw new EvidenceTreeTampered(
        `the evidence tree of ${proof.treeSize} records is not the one of ${last.size} this gateway signed plus its own record`,
      );
    }
    const checkpoint = this.sign(proof.treeSize, proof.root);
    log.keepCheckpoint(proof.treeSize, checkpoint);
    this.last = { size: proof.treeSize, frontier: expected };
    return {
      seq: proof.seq,
      leafIndex: proof.leafIndex,
      treeSize: proof.treeSize,
      leafHash: proof.leafHash.toString('base64'),
      checkpoint,
      inclusionProof: proof.inclusionProof.map((h) => h.toString('base64')),
    };
  }
}
