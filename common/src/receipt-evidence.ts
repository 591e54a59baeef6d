import type { components } from '../../openapi/generated/hub.ts';
import { type Checkpoint, openCheckpoint } from './checkpoint.ts';
import { verifyInclusion } from './merkle.ts';

/**
 * What a hub receipt carries besides its signature (docs/manufacturer.md, "Receipts"): the
 * `Packtrust-Evidence` header, base64url of the JSON of the contract's `ReceiptEvidence`. The hub
 * writes it (gateway/src/signed-write.ts); the upload client and `evidence verify` read it.
 */
export type ReceiptEvidence = components['schemas']['ReceiptEvidence'];

export const EVIDENCE_HEADER = 'packtrust-evidence';

export const encodeReceiptEvidence = (e: ReceiptEvidence): string =>
  Buffer.from(JSON.stringify(e)).toString('base64url');

export const decodeReceiptEvidence = (value: string): ReceiptEvidence =>
  JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as ReceiptEvidence;

/**
 * Checks a receipt's evidence on its own: the checkpoint is signed by the log key (a note
 * verifier key, from the operator), is of the tree the evidence names, and the inclusion proof
 * leads from the record's leaf to its root (RFC 9162 §2.1.3.2). Returns the checkpoint; throws
 * (CheckpointError for the signature, Error otherwise) when the evidence does not hold. Whether
 * the log still holds that tree is for `evidence verify` to say.
 */
export function checkReceiptEvidence(e: ReceiptEvidence, logKey: string): Checkpoint {
  const cp = openCheckpoint(e.checkpoint, logKey);
  const proof = e.inclusionProof.map((h) => Buffer.from(h, 'base64'));
  if (
    cp.size !== e.treeSize ||
    !verifyInclusion(e.leafIndex, e.treeSize, Buffer.from(e.leafHash, 'base64'), proof, cp.root)
  ) {
    throw new Error(`the inclusion proof of record ${e.seq} does not lead to its checkpoint`);
  }
  return cp;
}
