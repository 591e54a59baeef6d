import type { FastifyRequest } from 'fastify';
import { createHttpServer, type HttpServer, peerCertificateChain } from '../../common/src/http.ts';
import type { HttpMessage } from '../../common/src/http-signatures/index.ts';
import type { Logger } from '../../common/src/log.ts';
import type { ClientIdentifier, ClientIdentity, ClientProfile } from './client-identity.ts';
import { SignatureReplayed } from './errors.ts';
import { type EvidenceRecord, type HubStore, type Product, sha256Hex } from './hub-store.ts';
import { MasterDataInvalid, NotOwner, parseBody, productInput } from './master-data.ts';
import { type ReceiptSigner, type SignedResponse, signReceipt } from './receipt.ts';
import { verifyRequestSignature } from './signed-request.ts';

export interface GatewayOptions {
  store: HubStore;
  identifier: ClientIdentifier;
  receiptSigner: ReceiptSigner;
  tls: { key: string | Buffer; cert: string | Buffer; ca: string };
  signatureWindowSeconds: number;
  maxBodyBytes: number;
  logger: Logger;
}

/** What a write does once its request is authenticated: validate (may throw), then write inside the transaction. */
interface WriteOutcome {
  status: number;
  payload: unknown;
  /** Runs inside the write transaction, after the nonce is claimed; gets the evidence sequence. */
  apply(evidenceSeq: number): void;
}

/**
 * The hub's front door: mutual TLS, per-request certificate checks, RFC 9421 signed writes that
 * are kept as evidence and answered with a signed receipt, in the same LMDB transaction as the
 * data they change.
 */
export function createGatewayServer(options: GatewayOptions): HttpServer {
  const { store, identifier } = options;
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: options.maxBodyBytes,
    binaryContentTypes: ['application/json', 'text/plain'],
    tls: { key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca, requestCert: true },
  });

  /** Authenticates, verifies the signature, runs `write`, stores evidence and answers with a receipt. */
  const signedWrite =
    (
      profiles: readonly ClientProfile[],
      write: (client: ClientIdentity, body: Buffer, request: FastifyRequest) => WriteOutcome,
    ) =>
    async (request: FastifyRequest, reply: import('fastify').FastifyReply) => {
      const client = identifier.identify(request, profiles);
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const message = messageOf(request);
      const verified = verifyRequestSignature(message, body, client, options.signatureWindowSeconds);
      if (store.nonceSeen(client.fingerprint, verified.nonce)) {
        throw new SignatureReplayed(`Nonce "${verified.nonce}" was already used by this certificate`);
      }
      const outcome = write(client, body, request);
      const receivedAt = new Date().toISOString();
      let response: SignedResponse | undefined;
      await store.store.transaction(() => {
        const expires = (verified.created + options.signatureWindowSeconds) * 1000 + 1000;
        if (!store.claimNonce(client.fingerprint, verified.nonce, expires)) {
          throw new SignatureReplayed(`Nonce "${verified.nonce}" was already used by this certificate`);
        }
        const seq = (store.evidence.last()?.seq ?? 0) + 1;
        const payload = { ...(outcome.payload as object), evidence: { seq } };
        response = signReceipt(message, verified.label, outcome.status, payload, options.receiptSigner);
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
        const entry = store.appendEvidence(record, body);
        if (entry.seq !== seq) throw new Error('evidence sequence moved inside the transaction');
        outcome.apply(seq);
      });
      const r = response!;
      return reply.code(r.status).headers(r.headers).send(r.body);
    };

  app.get('/health', async () => ({ status: 'ok', evidence: store.evidence.last()?.seq ?? 0 }));

  app.post(
    '/v1/products',
    signedWrite(['manufacturer'], (client, body) => {
      const input = parseBody(productInput, body);
      const existing = store.products.get(input.productCode);
      if (existing && existing.owner !== client.org) {
        throw new NotOwner(`Product ${input.productCode} is registered by another organisation`);
      }
      if (existing?.status === 'WITHDRAWN') throw new MasterDataInvalid(`Product ${input.productCode} is withdrawn`);
      const now = new Date().toISOString();
      const product: Product = {
        ...input,
        owner: client.org,
        status: 'ACTIVE',
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      return {
        status: existing ? 200 : 201,
        payload: { product },
        apply(evidenceSeq) {
          store.products.putSync(product.productCode, product);
          // A market the product leaves still learns of the change, so its nodes stop listing it.
          const markets = new Set([...product.markets, ...(existing?.markets ?? [])]);
          for (const market of markets) store.feed(market).append({ type: 'product', product, evidenceSeq });
        },
      };
    }),
  );

  app.get<{ Params: { code: string } }>('/v1/products/:code', async (request) => {
    const client = identifier.identify(request, ['manufacturer']);
    const product = store.products.get(request.params.code);
    if (!product || product.owner !== client.org) {
      // Not revealing whether another organisation registered the code.
      throw new NotOwner(`No product ${request.params.code} owned by ${client.org}`);
    }
    return { product };
  });

  return app;
}

function messageOf(request: FastifyRequest): HttpMessage {
  return {
    method: request.method,
    targetUri: `https://${request.headers.host ?? 'localhost'}${request.url}`,
    headers: request.headers as HttpMessage['headers'],
  };
}

function headerPairs(request: FastifyRequest): [string, string][] {
  const raw = request.raw.rawHeaders;
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  return pairs;
}
