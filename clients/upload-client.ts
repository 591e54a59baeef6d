import { X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import {
  algorithmForKey,
  type HttpMessage,
  parseSignatures,
  verifySignature,
} from '../common/src/http-signatures/index.ts';
import { checkReceiptEvidence, decodeReceiptEvidence, EVIDENCE_HEADER } from '../common/src/receipt-evidence.ts';
import { keyidOf, RequestSigner } from '../common/src/signed-request.ts';

export interface UploadClientOptions {
  /** `https://hub.example:8443` */
  baseUrl: string;
  /** The manufacturer's certificate (PEM; leaf first, chain may follow) and its private key (PEM). */
  certPem: string;
  keyPem: string;
  /** Trust anchors for the hub's TLS certificate (the packtrust CA chain). */
  caPem: string;
  /**
   * The hub's evidence log key as its operator published it (`<origin>+<key hash>+<key>`): with
   * it every receipt's `Packtrust-Evidence` is checked too (signed checkpoint, inclusion proof).
   */
  evidenceKey?: string;
}

export interface UploadResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
  /** The signed receipt, when the hub accepted the write or kept its refusal (403) as evidence. */
  receipt?: Receipt;
}

/** What a manufacturer keeps: its request as signed, and the hub's signed answer to it. */
export interface Receipt {
  request: { method: string; targetUri: string; headers: Record<string, string>; bodyDigest: string };
  response: { status: number; headers: Record<string, string>; body: string };
  /** The hub certificate that signed the receipt, PEM. */
  hubCertificate: string;
  verified: true;
}

/**
 * The manufacturer's side of the hub API: mutual TLS with its certificate, every write signed
 * with RFC 9421 by the same key, and the hub's signed receipt checked before it is returned.
 */
export class UploadClient {
  private readonly signer: RequestSigner;
  private readonly agent: Agent;

  constructor(private readonly options: UploadClientOptions) {
    this.signer = new RequestSigner(options.certPem, options.keyPem);
    // No TLS session resumption: a resumed session carries no server certificate, and each receipt
    // is checked against the certificate of the connection that answered it.
    this.agent = new Agent({
      keepAlive: true,
      maxCachedSessions: 0,
      cert: options.certPem,
      key: options.keyPem,
      ca: options.caPem,
    });
  }

  /** Sends a signed write and checks the hub's receipt (`contentType` defaults to JSON). */
  async write(
    method: 'POST' | 'PUT' | 'DELETE',
    path: string,
    body: Buffer | string,
    options: { contentType?: string } = {},
  ): Promise<UploadResponse> {
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const targetUri = new URL(path, this.options.baseUrl).toString();
    const { headers, message } = this.signer.sign(method, targetUri, payload, options.contentType);
    const res = await this.send(method, targetUri, headers, payload);
    if (res.status < 300 || res.headers['signature-input'] !== undefined)
      res.receipt = this.checkReceipt(message, headers, res);
    return res;
  }

  /**
   * A request that changes nothing at the hub (the serials' dry run): mutual TLS only, not signed,
   * so the hub keeps no evidence of it and answers with no receipt.
   */
  async dryRun(path: string, body: Buffer | string, options: { contentType: string }): Promise<UploadResponse> {
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(body);
    return this.send(
      'POST',
      new URL(path, this.options.baseUrl).toString(),
      { 'content-type': options.contentType },
      payload,
    );
  }

  async get(path: string): Promise<UploadResponse> {
    return this.send('GET', new URL(path, this.options.baseUrl).toString(), {}, undefined);
  }

  close(): void {
    this.agent.destroy();
  }

  private checkReceipt(
    message: HttpMessage,
    sentHeaders: Record<string, string>,
    res: UploadResponse & { hubCert?: X509Certificate },
  ): Receipt {
    const hub = res.hubCert;
    if (!hub) throw new Error('The hub presented no certificate');
    const response: HttpMessage = {
      status: res.status,
      headers: res.headers,
      request: { ...message, headers: sentHeaders },
    };
    const [sig] = parseSignatures(response).filter((s) => s.label === 'receipt');
    if (!sig) throw new Error('The hub answered without a signed receipt');
    if (sig.params.get('keyid') !== keyidOf(hub))
      throw new Error('The receipt was not signed by the hub certificate of this connection');
    const alg = algorithmForKey(hub.publicKey);
    if (!alg) throw new Error('Unsupported hub key');
    verifySignature(response, sig, hub.publicKey, alg);
    if (this.options.evidenceKey) {
      const header = res.headers[EVIDENCE_HEADER];
      if (typeof header !== 'string') throw new Error('The receipt carries no evidence (Packtrust-Evidence)');
      checkReceiptEvidence(decodeReceiptEvidence(header), this.options.evidenceKey);
    }
    const flat = (h: Record<string, string | string[] | undefined>) =>
      Object.fromEntries(
        Object.entries(h)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, String(v)]),
      );
    return {
      request: {
        method: message.method!,
        targetUri: message.targetUri!,
        headers: sentHeaders,
        bodyDigest: sentHeaders['content-digest']!,
      },
      response: { status: res.status, headers: flat(res.headers), body: res.body.toString('utf8') },
      hubCertificate: hub.toString(),
      verified: true,
    };
  }

  private send(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
  ): Promise<UploadResponse & { hubCert?: X509Certificate }> {
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { method, agent: this.agent, headers: body ? { ...headers, 'content-length': body.length } : headers },
        (res) => {
          const chunks: Buffer[] = [];
          const peer = (res.socket as TLSSocket).getPeerCertificate?.();
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const data = Buffer.concat(chunks);
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: data,
              json: () => JSON.parse(data.toString('utf8')),
              ...(peer?.raw ? { hubCert: new X509Certificate(peer.raw) } : {}),
            });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
