import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type CheckpointSigner, openCheckpoint, signCheckpoint, verifierKey } from '../../common/src/checkpoint.ts';
import type { Logger } from '../../common/src/log.ts';
import { verifyConsistency } from '../../common/src/merkle.ts';
import type { components } from '../../openapi/generated/hub.ts';
import { EvidenceKeyInvalid, EvidenceTreeTampered } from './errors.ts';
import type { EvidenceLog, InclusionEvidence } from './evidence.ts';
import type { HubStore } from './hub-store.ts';

/**
 * The evidence log's notary: signs checkpoints (C2SP signed notes, common/src/checkpoint.ts) of
 * the Merkle tree with an Ed25519 key that is not in the hub store, so whoever can write the
 * store can change records but cannot sign a tree that holds the change (ARCHITECTURE.md,
 * "Evidence"). The key's name is the log's origin, so a checkpoint names the log it is of.
 */
export class EvidenceNotary {
  private readonly signer: CheckpointSigner;
  /** The largest tree this notary signed (or found signed at start): every later one must extend it. */
  private last: { size: number; root: Buffer } | undefined;
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
   * At start: takes the newest checkpoint kept in the store as the last tree signed, once its
   * signature is this notary's and the log still has that tree. A store changed while the gateway
   * was down (records rewritten or removed under a kept checkpoint) stops the start here.
   */
  resume(log: Pick<EvidenceLog, 'latestCheckpoint' | 'treeSize' | 'root'>): void {
    const latest = log.latestCheckpoint();
    if (!latest) return;
    let cp: { size: number; root: Buffer };
    try {
      cp = openCheckpoint(latest.note, this.verifierKey);
    } catch (err) {
      throw new EvidenceTreeTampered(`the store's newest checkpoint is not signed by this gateway's evidence key`, {
        cause: err,
      });
    }
    if (cp.size > log.treeSize() || !log.root(cp.size).equals(cp.root)) {
      throw new EvidenceTreeTampered(
        `the evidence log no longer has the tree of ${cp.size} records this gateway signed: run \`packtrust-gateway evidence verify\``,
      );
    }
    this.last = { size: cp.size, root: cp.root };
  }

  /**
   * Signs a checkpoint of the log's tree of `size` records, after checking that it and the last
   * tree this notary signed are one log (RFC 9162 §2.1.4, proof from the stored tree). A tree that
   * is not is a store changed outside the gateway: nothing is signed, and the write fails.
   */
  attest(log: Pick<EvidenceLog, 'consistency'>, size: number, root: Buffer): string {
    const last = this.last;
    if (last) {
      const consistent =
        size === last.size
          ? root.equals(last.root)
          : size < last.size
            ? verifyConsistency(size, last.size, root, last.root, log.consistency(size, last.size))
            : verifyConsistency(last.size, size, last.root, root, log.consistency(last.size, size));
      if (!consistent) {
        throw new EvidenceTreeTampered(
          `the evidence tree of ${size} records is not consistent with the one of ${last.size} this gateway signed`,
        );
      }
    }
    if (!last || size > last.size) this.last = { size, root };
    return this.sign(size, root);
  }

  /**
   * What a receipt carries (`Packtrust-Evidence`): the record's leaf, its inclusion proof and the
   * signed checkpoint of the tree it ends, so the holder can later prove a rewrite or a truncation.
   */
  receiptEvidence(log: Pick<EvidenceLog, 'consistency'>, proof: InclusionEvidence): ReceiptEvidence {
    return {
      seq: proof.seq,
      leafIndex: proof.leafIndex,
      treeSize: proof.treeSize,
      leafHash: proof.leafHash.toString('base64'),
      checkpoint: this.attest(log, proof.treeSize, proof.root),
      inclusionProof: proof.inclusionProof.map((h) => h.toString('base64')),
    };
  }
}

/** The `Packtrust-Evidence` header of a receipt, decoded (openapi/hub.yaml `ReceiptEvidence`). */
export type ReceiptEvidence = components['schemas']['ReceiptEvidence'];

export const EVIDENCE_HEADER = 'packtrust-evidence';

/** The header value: base64url of the JSON (a signed note spans several lines). */
export const encodeReceiptEvidence = (e: ReceiptEvidence): string =>
  Buffer.from(JSON.stringify(e)).toString('base64url');

export const decodeReceiptEvidence = (value: string): ReceiptEvidence =>
  JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as ReceiptEvidence;

/** How often the newest tree is checkpointed and published while there are writes (issue: at least every second). */
export const CHECKPOINT_INTERVAL_MS = 1000;

/**
 * Every `intervalMs` while the log grows: signs a checkpoint of the whole tree and keeps it in the
 * store, whence `GET /v1/evidence/checkpoint` serves it and every feed answer carries it to the
 * verifier nodes, which keep the ones they verified out of the hub operator's reach. Returns a
 * stop function that waits for a round in progress.
 */
export function startCheckpointing(
  store: Pick<HubStore, 'evidence' | 'transaction'>,
  notary: EvidenceNotary,
  logger: Logger,
  intervalMs = CHECKPOINT_INTERVAL_MS,
): () => Promise<void> {
  let round: Promise<void> = Promise.resolve();
  const checkpoint = async () => {
    const log: EvidenceLog = store.evidence;
    const size = log.treeSize();
    if (size === 0 || size <= (log.latestCheckpoint()?.size ?? 0)) return;
    const note = notary.attest(log, size, log.root(size));
    await store.transaction(() => {
      if (size > (log.latestCheckpoint()?.size ?? 0)) log.keepCheckpoint(size, note);
    });
  };
  const timer = setInterval(() => {
    round = round.then(checkpoint).catch((err: unknown) => logger.error({ err }, 'evidence checkpoint failed'));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await round;
  };
}
