import type { FastifyReply, FastifyRequest } from 'fastify';
import { PacktrustError, PROBLEM_CONTENT_TYPE } from '../../common/src/errors.ts';
import { peerCertificateChain } from '../../common/src/http.ts';
import type { HttpMessage } from '../../common/src/http-signatures/index.ts';
import { EVIDENCE_HEADER, encodeReceiptEvidence } from '../../common/src/receipt-evidence.ts';
import type { ClientIdentity } from './client-identity.ts';
import { EvidenceSequenceMoved, SignatureReplayed } from './errors.ts';
import { type EvidenceRecord, sha256Hex } from './evidence.ts';
import type { EvidenceNotary } from './evidence-checkpoints.ts';
import type { HubStore } from './hub-store.ts';
import { type ReceiptSigner, type SignedResponse, signReceipt } from './receipt.ts';
import { targetUriOf, verifyRequestSignature } from './signed-request.ts';

/** What a write does once its request is authenticated: validate (may throw), then write inside the transaction. */
export interface WriteOutcome {
  status: number;
  contentType?: string;
  /** The answer; or, when a write is decided inside the transaction, what `apply` returns. */
  payload?: unknown;
  /** Runs inside the write transaction, after the nonce is claimed; gets the evidence sequence. */
  apply(evidenceSeq: number): unknown;
  /** The markets whose feed `apply` appends to (their long-polling readers are woken after the commit). */
  markets?: Iterable<string>;
}

/**
 * A route's write: reads the verified body and says what to commit. A 403 it throws (the caller
 * acted beyond its rights) is kept as evidence and answered with a signed refusal.
 */
type Write = (client: ClientIdentity, body: Buffer, request: FastifyRequest) => WriteOutcome | Promise<WriteOutcome>;

interface SignedWriteOptions {
  store: Pick<HubStore, 'nonces' | 'evidence' | 'transaction'>;
  receiptSigner: ReceiptSigner;
  /** Signs the checkpoint each receipt carries (evidence-checkpoints.ts). */
  notary: EvidenceNotary;
  signatureWindowSeconds: number;
  /** Called after the commit with the markets whose feeds the write appended to. */
  committed(markets: Iterable<string>): void;
}

/** A fastify handler that runs `write` as a signed write. */
export type SignedWrite = (write: Write) => (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/**
 * The one path every write takes (ARCHITECTURE.md, "Signed writes"): the RFC 9421 signature and
 * RFC 9530 digest verified with the key of the client's certificate, the nonce checked, the
 * route's `write` run; then one transaction that claims the nonce (replay), applies the change and
 * appends the evidence record with the response and its receipt signature. The answer leaves only
 * after that commit, with the record's inclusion proof and a signed checkpoint of the tree it
 * ends in `Packtrust-Evidence` (evidence-checkpoints.ts): not part of the record, which it proves. A 403 from `write` is kept as evidence like an accepted write, and nothing
 * else is written.
 *
 * What it leaves to its callers: who the client is and whether its profile may write here
 * (`request.client`, set by the route group's identity hook, routes/caller.ts), and what the body
 * means (`write`).
 */
export function signedWrites(options: SignedWriteOptions): SignedWrite {
  const { store, signatureWindowSeconds } = options;
  return (write) => async (request, reply) => {
    const client = request.client;
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const message = messageOf(request);
    const verified = verifyRequestSignature(message, body, client, signatureWindowSeconds);
    if (store.nonces.seen(client.fingerprint, verified.nonce)) {
      throw new SignatureReplayed(`Nonce "${verified.nonce}" was already used by this certificate`);
    }
    // An authenticated party tried to act beyond its rights: the attempt is kept as evidence,
    // and the refusal is signed like a receipt. Nothing else is written.
    const refusal = (err: PacktrustError): WriteOutcome => {
      request.log.warn({ client: client.serial, org: client.org, code: err.code }, err.message);
      return {
        status: 403,
        contentType: `${PROBLEM_CONTENT_TYPE}; charset=utf-8`,
        payload: err.toProblem(),
        apply: () => undefined,
      };
    };
    let outcome: WriteOutcome;
    try {
      outcome = await write(client, body, request);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      outcome = refusal(err);
    }
    const commit = async (outcome: WriteOutcome): Promise<SignedResponse> => {
      let response: SignedResponse | undefined;
      await store.transaction(() => {
        const expires = (verified.created + signatureWindowSeconds) * 1000 + 1000;
        if (!store.nonces.claim(client.fingerprint, verified.nonce, expires)) {
          throw new SignatureReplayed(`Nonce "${verified.nonce}" was already used by this certificate`);
        }
        const seq = store.evidence.lastSeq() + 1;
        // Taken inside the transaction, so the records' times rise with their numbers (evidence verify checks it).
        const receivedAt = new Date().toISOString();
        const decided = outcome.apply(seq);
        const payload = { ...((outcome.payload ?? decided) as object), evidence: { seq } };
        response = signReceipt(
          message,
          verified.label,
          outcome.status,
          payload,
          options.receiptSigner,
          outcome.contentType,
        );
        const record: EvidenceRecord = {
          receivedAt,
          method: request.method,
          targetUri: message.targetUri!,
          headers: headerPairs(request),
          bodySha256: sha256Hex(body),
          bodyLength: body.length,
          signatureLabel: verified.label,
          nonce: verified.nonce,
          clientCertificates: peerCertificateChain(request).map((c) => c.toString('base64')),
          clientFingerprint: client.fingerprint,
          org: client.org,
          response: {
            status: response.status,
            headers: Object.entries(response.headers),
            bodySha256: sha256Hex(response.body),
          },
        };
        const proof = store.evidence.append(record, body);
        if (proof.seq !== seq) throw new EvidenceSequenceMoved('evidence sequence moved inside the transaction');
        response.headers[EVIDENCE_HEADER] = encodeReceiptEvidence(
          options.notary.receiptEvidence(store.evidence, proof),
        );
      });
      return response!;
    };
    let r: SignedResponse;
    try {
      r = await commit(outcome);
    } catch (err) {
      // Refused inside the transaction, on what was stored by then (a concurrent change): kept too.
      if (!isRefusal(err) || outcome.status === 403) throw err;
      outcome = refusal(err);
      r = await commit(outcome);
    }
    if (outcome.markets) options.committed(outcome.markets);
    return reply.code(r.status).headers(r.headers).send(r.body);
  };
}

const isRefusal = (err: unknown): err is PacktrustError => err instanceof PacktrustError && err.status === 403;

function messageOf(request: FastifyRequest): HttpMessage {
  return {
    method: request.method,
    targetUri: targetUriOf(request),
    headers: request.headers as HttpMessage['headers'],
  };
}

function headerPairs(request: FastifyRequest): [string, string][] {
  const raw = request.raw.rawHeaders;
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}
