import { X509Certificate } from 'node:crypto';
import { type Checkpoint, openCheckpoint } from '../../common/src/checkpoint.ts';
import { bodyDigest, checkContentDigest } from '../../common/src/content-digest.ts';
import {
  algorithmForKey,
  type HttpMessage,
  parseSignatures,
  verifySignature,
} from '../../common/src/http-signatures/index.ts';
import { appendLeaf, type Frontier, leafHash, rootFromFrontier } from '../../common/src/merkle.ts';
import { bytes, derOf, fromPem, x509 } from '../../common/src/pki.ts';
import {
  checkReceiptEvidence,
  decodeReceiptEvidence,
  EVIDENCE_HEADER,
  type ReceiptEvidence,
} from '../../common/src/receipt-evidence.ts';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import { subjectFields } from './client-identity.ts';
import { type EvidenceLog, type EvidenceRecord, leafData, sha256Hex } from './evidence.ts';

/**
 * What `packtrust-gateway evidence verify` can find (docs/operations.md, "Evidence"), each with
 * the exit code the command ends with. When there are several, the command exits with the code
 * of the first kind in this order: a truncated or rewritten log outweighs one bad record.
 */
export const FINDINGS = {
  /** A signed checkpoint or a receipt is of a tree larger than the log: records were removed from its end. */
  LOG_TRUNCATED: 7,
  /** The log's tree at a signed size has another root, a receipt's record differs, or a record is missing from the middle. */
  LOG_REWRITTEN: 6,
  /** A checkpoint does not verify with the log's key, or a receipt's inclusion proof does not lead to its checkpoint. */
  CHECKPOINT_INVALID: 8,
  /** A record's client certificate does not chain to the CA (or was not valid at the record's time). */
  CERTIFICATE_UNTRUSTED: 4,
  /** A record's client certificate was revoked before the record was received. */
  CERTIFICATE_REVOKED: 5,
  /** A record's body, Content-Digest or request signature does not hold. */
  RECORD_INVALID: 3,
} as const;

export type FindingCode = keyof typeof FINDINGS;

export interface Finding {
  code: FindingCode;
  /** The record concerned, if one is. */
  seq?: number;
  detail: string;
}

/** The packtrust CA as the verifier trusts it: the chain's anchors and the revocations its CRLs list, with their dates. */
export interface TrustAnchors {
  issuing: X509Certificate;
  root: X509Certificate;
  /** Normalised serial → revocation date. */
  revoked: Map<string, Date>;
  /** The latest `nextUpdate` of the CRLs given: past it, the CRLs say nothing about revocations. */
  crlNextUpdate: Date | undefined;
}

/**
 * The trust anchors from the CA chain (issuing CA, then root, PEM) and the issuing CA's CRLs
 * (DER or PEM): each CRL must be signed by the issuing CA, or it is refused.
 */
export async function loadTrustAnchors(chainPem: string, crls: Buffer[]): Promise<TrustAnchors> {
  const [issuing, root] = fromPem(chainPem, 'CERTIFICATE').map((der) => new X509Certificate(der));
  if (!issuing || !root || !issuing.verify(root.publicKey)) {
    throw new Error('The CA chain must hold the issuing CA, then the root that signed it');
  }
  const revoked = new Map<string, Date>();
  let crlNextUpdate: Date | undefined;
  const issuingKey = await new x509.X509Certificate(bytes(issuing.raw)).publicKey.export();
  for (const input of crls) {
    const crl = new x509.X509Crl(bytes(derOf(input, 'X509 CRL')));
    if (!(await crl.verify({ publicKey: issuingKey }))) throw new Error('A CRL does not verify with the issuing CA');
    for (const e of crl.entries) {
      const serial = normaliseSerial(e.serialNumber);
      if (serial) revoked.set(serial, e.revocationDate);
    }
    const next = crl.nextUpdate ?? new Date(8.64e15);
    if (!crlNextUpdate || next > crlNextUpdate) crlNextUpdate = next;
  }
  return { issuing, root, revoked, crlNextUpdate };
}

/** A receipt as `packtrust-upload` keeps it (clients/upload-client.ts `Receipt`): what the verifier reads of it. */
export interface ReceiptInput {
  source: string;
  evidence: ReceiptEvidence;
  /** SHA-256 (hex) of the receipt's body: the answer the hub gave, which the record must hold. */
  responseBodySha256: string;
}

/** Reads a kept receipt (JSON with `response.headers` and `response.body`). */
export function receiptInput(source: string, json: string): ReceiptInput {
  const receipt = JSON.parse(json) as { response?: { headers?: Record<string, string>; body?: string } };
  const header = receipt.response?.headers?.[EVIDENCE_HEADER];
  if (!header || receipt.response?.body === undefined) {
    throw new Error(`${source} is not a receipt with a ${EVIDENCE_HEADER} header`);
  }
  return {
    source,
    evidence: decodeReceiptEvidence(header),
    responseBodySha256: sha256Hex(Buffer.from(receipt.response.body, 'utf8')),
  };
}

export interface EvidenceVerificationOptions {
  trust: TrustAnchors;
  /** The note verifier key of the log's checkpoints, taken from the operator out of band. */
  logKey: string;
  /** Signed checkpoints to hold the log to: the store's newest, files from nodes or auditors. */
  checkpoints?: { source: string; note: string }[];
  receipts?: ReceiptInput[];
  /** The gateway's `signatureWindowSeconds`: how far a request's `created` may lie from the record's time. */
  signatureWindowSeconds?: number;
}

export interface EvidenceReport {
  ok: boolean;
  /** Records in the log. */
  records: number;
  /** The largest tree size a valid checkpoint or receipt vouches for. */
  anchored: number;
  checkpoints: number;
  receipts: number;
  findings: Finding[];
  /** Findings beyond those listed (the list stops at {@link MAX_FINDINGS}). */
  moreFindings: number;
  /** Records received after the CRLs given stopped being current (their nextUpdate): revocations then are unknown here. */
  afterCrl: number;
}

const MAX_FINDINGS = 100;

/**
 * Offline verification of the evidence log against what its operator cannot forge
 * (ARCHITECTURE.md, "Evidence"): the Merkle tree recomputed from the records (the stored tree is
 * not trusted) must have, at every size a valid checkpoint or receipt names, the signed root; a
 * receipt's record must be the one the log holds at its index; no checkpoint may be of a larger
 * tree than the log. Every record's body, Content-Digest and request signature must hold, and its
 * client certificate must chain to the CA and not have been revoked when the record was received.
 */
export function verifyEvidence(log: EvidenceLog, options: EvidenceVerificationOptions): EvidenceReport {
  const findings: Finding[] = [];
  let moreFindings = 0;
  const find = (f: Finding) => (findings.length < MAX_FINDINGS ? findings.push(f) : moreFindings++);

  /** Roots the log must have at a size, each with who vouches for it and when it was signed. */
  const roots = new Map<number, { root: Buffer; source: string; time: Date }[]>();
  const origin = options.logKey.split('+')[0];
  /** Leaves the log must have at an index (receipts). */
  const leaves = new Map<number, ReceiptInput[]>();
  const vouch = (cp: Checkpoint, source: string) => {
    if (cp.origin !== origin) throw new Error(`the checkpoint is of the log "${cp.origin}", not "${origin}"`);
    const list = roots.get(cp.size) ?? [];
    const other = list.find((r) => !r.root.equals(cp.root));
    if (other) {
      find({
        code: 'LOG_REWRITTEN',
        detail: `two trees of ${cp.size} records were signed: ${source} and ${other.source} differ`,
      });
    }
    list.push({ root: cp.root, source, time: cp.time });
    roots.set(cp.size, list);
  };
  let checkpoints = 0;
  for (const { source, note } of options.checkpoints ?? []) {
    try {
      vouch(openCheckpoint(note, options.logKey), source);
      checkpoints++;
    } catch (err) {
      find({ code: 'CHECKPOINT_INVALID', detail: `${source}: ${(err as Error).message}` });
    }
  }
  let receipts = 0;
  for (const receipt of options.receipts ?? []) {
    const e = receipt.evidence;
    let cp: Checkpoint;
    try {
      cp = checkReceiptEvidence(e, options.logKey);
      vouch(cp, receipt.source);
    } catch (err) {
      find({ code: 'CHECKPOINT_INVALID', seq: e.seq, detail: `${receipt.source}: ${(err as Error).message}` });
      continue;
    }
    leaves.set(e.leafIndex, [...(leaves.get(e.leafIndex) ?? []), receipt]);
    receipts++;
  }

  // The earliest signed time of a tree holding each size: no record it holds can be younger.
  const signedBy = [...roots].map(([n, list]) => ({ size: n, time: Math.min(...list.map((v) => v.time.getTime())) }));
  signedBy.sort((a, b) => b.size - a.size);
  const seen = new Map<string, number>();
  const windowMs = (options.signatureWindowSeconds ?? 300) * 1000;
  let previousAt = 0;
  let afterCrl = 0;
  let frontier: Frontier = [];
  let size = 0;
  for (const entry of log.entries(1)) {
    if (entry.seq !== size + 1) {
      find({ code: 'LOG_REWRITTEN', seq: size + 1, detail: `record ${size + 1} is missing from the log` });
      break;
    }
    const leaf = leafHash(leafData(entry));
    frontier = appendLeaf(frontier, size, leaf).frontier;
    size++;
    for (const receipt of leaves.get(size - 1) ?? []) {
      if (!leaf.equals(Buffer.from(receipt.evidence.leafHash, 'base64'))) {
        const answer =
          receipt.responseBodySha256 !== entry.body.response.bodySha256
            ? ' (the recorded answer is not the one given)'
            : '';
        find({
          code: 'LOG_REWRITTEN',
          seq: entry.seq,
          detail: `record ${entry.seq} is not the record ${receipt.source} proves${answer}`,
        });
      }
    }
    const vouched = roots.get(size);
    if (vouched) {
      const root = rootFromFrontier(frontier);
      for (const v of vouched) {
        if (!v.root.equals(root)) {
          find({
            code: 'LOG_REWRITTEN',
            seq: size,
            detail: `the first ${size} records do not have the root ${v.source} signed`,
          });
        }
      }
    }
    const checked = checkRecord(entry.seq, entry.body, log.body(entry.seq), options.trust);
    for (const f of checked.findings) find(f);
    // Bindings the record's own checks leave open (a record the store's holder made of real parts).
    const r = entry.body;
    const at = Date.parse(r.receivedAt);
    const invalid = (detail: string) => find({ code: 'RECORD_INVALID', seq: entry.seq, detail });
    if (!(at >= previousAt)) invalid(`its time ${r.receivedAt} is before that of the record before it`);
    previousAt = Math.max(previousAt, at || 0);
    const signedAt = signedBy.filter((s) => s.size >= entry.seq).reduce((t, s) => Math.min(t, s.time), Infinity);
    if (at > signedAt) invalid(`its time ${r.receivedAt} is after a checkpoint that holds it was signed`);
    const signature = r.headers.find(([k]) => k.toLowerCase() === 'signature')?.[1] ?? '';
    for (const key of [`nonce ${r.clientFingerprint} ${r.nonce}`, `signature ${signature}`]) {
      const first = seen.get(key);
      if (first !== undefined) invalid(`it repeats the request of record ${first} (same ${key.split(' ')[0]})`);
      else seen.set(key, entry.seq);
    }
    const created = /;created=(\d+)/.exec(r.headers.find(([k]) => k.toLowerCase() === 'signature-input')?.[1] ?? '');
    if (!created || Math.abs(Number(created[1]) * 1000 - at) > windowMs) {
      invalid(`its request was signed at a time the gateway would not have accepted at ${r.receivedAt}`);
    }
    const bound = checked.cert && certificateBinding(r, checked.cert);
    if (bound) invalid(bound);
    if (!options.trust.crlNextUpdate || at > options.trust.crlNextUpdate.getTime()) afterCrl++;
  }
  let anchored = 0;
  for (const [vouchedSize, list] of roots) {
    if (vouchedSize > size) {
      find({
        code: 'LOG_TRUNCATED',
        detail: `${list[0]!.source} is signed for ${vouchedSize} records; the log holds ${size}`,
      });
    } else anchored = Math.max(anchored, vouchedSize);
  }
  findings.sort((a, b) => order(a.code) - order(b.code));
  return {
    ok: findings.length === 0,
    records: size,
    anchored,
    checkpoints,
    receipts,
    findings,
    moreFindings,
    afterCrl,
  };
}

const order = (code: FindingCode): number => Object.keys(FINDINGS).indexOf(code);

/** The exit code of `evidence verify` for a report (0 when it holds). */
export function exitCodeOf(report: EvidenceReport): number {
  const first = report.findings[0];
  return first ? FINDINGS[first.code] : 0;
}

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
 * One record: its body and request signature, and its client certificate against the trust
 * anchors; with the certificate, once it could be read (the caller checks what the record says of it).
 */
function checkRecord(
  seq: number,
  record: EvidenceRecord,
  body: Buffer | undefined,
  trust: TrustAnchors,
): { findings: Finding[]; cert?: X509Certificate } {
  const invalid = (detail: string): Finding[] => [{ code: 'RECORD_INVALID', seq, detail }];
  const untrusted = (detail: string) => ({ findings: [{ code: 'CERTIFICATE_UNTRUSTED' as const, seq, detail }] });
  if (!body) return { findings: invalid('the request body is missing') };
  if (sha256Hex(body) !== record.bodySha256) {
    return { findings: invalid('the stored body does not match its recorded hash') };
  }
  const message = requestOf(record);
  const digest = checkContentDigest(message.headers['content-digest']?.toString(), bodyDigest(body));
  if (!digest.ok) return { findings: invalid(`Content-Digest: ${digest.reason}`) };
  const der = record.clientCertificates[0];
  if (!der) return untrusted('no client certificate was kept');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der, 'base64'));
  } catch {
    return untrusted('the kept client certificate cannot be read');
  }
  const findings: Finding[] = [];
  const at = new Date(record.receivedAt);
  if (!cert.checkIssued(trust.issuing) || !cert.verify(trust.issuing.publicKey)) {
    findings.push({
      code: 'CERTIFICATE_UNTRUSTED',
      seq,
      detail: `the client certificate "${cert.subject.replaceAll('\n', ', ')}" was not issued by the packtrust CA`,
    });
  } else if (!(at >= new Date(cert.validFrom) && at <= new Date(cert.validTo))) {
    findings.push({
      code: 'CERTIFICATE_UNTRUSTED',
      seq,
      detail: `the client certificate was not valid at ${record.receivedAt}`,
    });
  } else {
    const revokedAt = trust.revoked.get(normaliseSerial(cert.serialNumber) ?? '');
    // A CRL gives the revocation time to the second: a record within that second may have come
    // first, and is given the benefit of the doubt (docs/operations.md, "Evidence").
    if (revokedAt && at.getTime() >= revokedAt.getTime() + 1000) {
      findings.push({
        code: 'CERTIFICATE_REVOKED',
        seq,
        detail: `the client certificate ${cert.serialNumber} was revoked at ${revokedAt.toISOString()}, before the record (${record.receivedAt})`,
      });
    }
  }
  const sig = parseSignatures(message).find((s) => s.label === record.signatureLabel);
  const alg = algorithmForKey(cert.publicKey);
  if (!sig) findings.push(...invalid(`signature "${record.signatureLabel}" is missing from the stored headers`));
  else if (!alg) findings.push(...invalid('unsupported client key'));
  else {
    try {
      verifySignature(message, sig, cert.publicKey, alg);
    } catch (err) {
      findings.push(...invalid(`request signature: ${(err as Error).message}`));
    }
  }
  return { findings, cert };
}

/** Whether the record's organisation and fingerprint are its certificate's; a reason when not. */
function certificateBinding(r: EvidenceRecord, cert: X509Certificate): string | undefined {
  if (cert.fingerprint256.replaceAll(':', '').toLowerCase() !== r.clientFingerprint) {
    return 'its client fingerprint is not that of its certificate';
  }
  if (subjectFields(cert.subject).organizationIdentifier !== r.org) {
    return `its organisation "${r.org}" is not that of its certificate`;
  }
  return undefined;
}
