import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type CheckpointSigner, signCheckpoint, verifierKey } from '../../common/src/checkpoint.ts';
import type { Logger } from '../../common/src/log.ts';
import { EvidenceKeyInvalid } from './errors.ts';
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

  /** The signed checkpoint of the tree of `size` records whose root is `root`, made now. */
  sign(size: number, root: Buffer, time = new Date()): string {
    return signCheckpoint({ origin: this.origin, size, root, time }, this.signer);
  }

  /**
   * What a receipt carries (`Packtrust-Evidence`): the record's leaf, its inclusion proof and the
   * signed checkpoint of the tree it ends, so the holder can later prove a rewrite or a truncation.
   */
  receiptEvidence(proof: InclusionEvidence): ReceiptEvidence {
    return {
      seq: proof.seq,
      leafIndex: proof.leafIndex,
      treeSize: proof.treeSize,
      leafHash: proof.leafHash.toString('base64'),
      checkpoint: this.sign(proof.treeSize, proof.root),
      inclusionProof: proof.inclusionProof.map((h) => h.toString('base64')),
    };
  }
}

/** The `Packtrust-Evidence` header of a receipt, decoded (openapi/hub.yaml `ReceiptEvidence`). */
export interface ReceiptEvidence {
  seq: number;
  leafIndex: number;
  treeSize: number;
  /** Base64 RFC 9162 leaf hash of the record. */
  leafHash: string;
  /** The signed note of the checkpoint of the tree of `treeSize` records. */
  checkpoint: string;
  /** Base64 hashes, RFC 9162 §2.1.3.1. */
  inclusionProof: string[];
}

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
    const note = notary.sign(size, log.root(size));
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
