import { createHash, X509Certificate } from 'node:crypto';
import { bodyDigest, checkContentDigest } from '../../common/src/content-digest.ts';
import { type ChainEntry, type ChainVerification, HashChain } from '../../common/src/hash-chain.ts';
import {
  algorithmForKey,
  type HttpMessage,
  parseSignatures,
  verifySignature,
} from '../../common/src/http-signatures/index.ts';
import type { Database, Store } from '../../common/src/store.ts';

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
  response: { status: number; headers: [string, string][]; bodySha256: string };
}

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * The evidence log (ARCHITECTURE.md, "Evidence"): every signed write's record hash-chained in
 * `evidence`, its body kept verbatim in `evidence-bodies` under the same sequence number. What it
 * leaves to the caller: appending inside the write transaction that makes the change the record
 * answers for (signed-write.ts), so that a record exists exactly for what was committed.
 */
export class EvidenceLog {
  private readonly chain: HashChain<EvidenceRecord>;
  private readonly bodies: Database<Buffer, number>;

  constructor(store: Store) {
    this.chain = new HashChain(store.db<ChainEntry<EvidenceRecord>, number>('evidence'));
    this.bodies = store.db('evidence-bodies', { encoding: 'binary' });
  }

  /** The newest record, undefined while the log is empty. */
  last(): ChainEntry<EvidenceRecord> | undefined {
    return this.chain.last();
  }

  /** The sequence number of the newest record; 0 while the log is empty. */
  lastSeq(): number {
    return this.chain.last()?.seq ?? 0;
  }

  /** Inside a write transaction: appends the record and keeps the body verbatim. */
  append(record: EvidenceRecord, body: Buffer): ChainEntry<EvidenceRecord> {
    const entry = this.chain.append(record);
    this.bodies.putSync(entry.seq, body);
    return entry;
  }

  record(seq: number): ChainEntry<EvidenceRecord> | undefined {
    return this.chain.db.get(seq);
  }

  /** The request body of record `seq`, byte for byte. */
  body(seq: number): Buffer | undefined {
    return this.bodies.get(seq);
  }

  entries(fromSeq = 1): Iterable<ChainEntry<EvidenceRecord>> {
    return this.chain.entries(fromSeq);
  }

  /** Recomputes the hash chain from `fromSeq` (the records only; {@link verifyEvidence} checks the requests too). */
  verify(fromSeq = 1): ChainVerification {
    return this.chain.verify(fromSeq);
  }
}

export type EvidenceCheck =
  | { ok: true; checked: number; lastSeq: number }
  | { ok: false; checked: number; firstBroken: { seq: number; reason: string } };

/** The request of an evidence record, as the gateway received it. */
function requestOf(record: EvidenceRecord): HttpMessage {
  const headers: Record<string, string[]> = {};
  for (const [name, value] of record.headers) {
    const key = name.toLowerCase();
    headers[key] = [...(headers[key] ?? []), value];
  }
  return { method: record.method, targetUri: record.targetUri, headers };
}

/**
 * Offline re-verification of the evidence log from `fromSeq`: the hash chain, and for every
 * record the stored body against its hash and Content-Digest, and the request signature against
 * the client certificate kept with it. Reports the first record that does not hold.
 */
export function verifyEvidence(store: { evidence: EvidenceLog }, fromSeq = 1): EvidenceCheck {
  const chain = store.evidence.verify(fromSeq);
  let checked = 0;
  for (const entry of store.evidence.entries(fromSeq)) {
    if (!chain.ok && entry.seq >= chain.firstBroken.seq) break;
    const problem = checkRecord(entry.body, store.evidence.body(entry.seq));
    if (problem) return { ok: false, checked, firstBroken: { seq: entry.seq, reason: problem } };
    checked++;
  }
  if (!chain.ok) return { ok: false, checked, firstBroken: chain.firstBroken };
  return { ok: true, checked, lastSeq: chain.lastSeq };
}

function checkRecord(record: EvidenceRecord, body: Buffer | undefined): string | undefined {
  if (!body) return 'the request body is missing';
  if (sha256Hex(body) !== record.bodySha256) return 'the stored body does not match its recorded hash';
  const message = requestOf(record);
  const digest = checkContentDigest(message.headers['content-digest']?.toString(), bodyDigest(body));
  if (!digest.ok) return `Content-Digest: ${digest.reason}`;
  const leaf = record.clientCertificates[0];
  if (!leaf) return 'no client certificate was kept';
  const cert = new X509Certificate(Buffer.from(leaf, 'base64'));
  const sig = parseSignatures(message).find((s) => s.label === record.signatureLabel);
  if (!sig) return `signature "${record.signatureLabel}" is missing from the stored headers`;
  const alg = algorithmForKey(cert.publicKey);
  if (!alg) return 'unsupported client key';
  try {
    verifySignature(message, sig, cert.publicKey, alg);
  } catch (err) {
    return `request signature: ${(err as Error).message}`;
  }
  return undefined;
}
