import { X509Certificate } from 'node:crypto';
import { bodyDigest, checkContentDigest } from '../../common/src/content-digest.ts';
import {
  algorithmForKey,
  type HttpMessage,
  parseSignatures,
  verifySignature,
} from '../../common/src/http-signatures/index.ts';
import type { EvidenceRecord, HubStore } from './hub-store.ts';
import { sha256Hex } from './hub-store.ts';

export type EvidenceCheck =
  | { ok: true; checked: number; lastSeq: number }
  | { ok: false; checked: number; firstBroken: { seq: number; reason: string } };

/** The request of an evidence record, as the gateway received it. */
export function requestOf(record: EvidenceRecord): HttpMessage {
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
export function verifyEvidence(store: HubStore, fromSeq = 1): EvidenceCheck {
  const chain = store.evidence.verify(fromSeq);
  let checked = 0;
  for (const entry of store.evidence.entries(fromSeq)) {
    if (!chain.ok && entry.seq >= chain.firstBroken.seq) break;
    const problem = checkRecord(entry.body, store.evidenceBody(entry.seq));
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
