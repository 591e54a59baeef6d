/**
 * The packtrust profile of RFC 9421 for writes to the hub (ARCHITECTURE.md, "The gateway"): the key of the
 * client's mTLS certificate signs `@method`, `@target-uri`, `content-digest` (RFC 9530, SHA-512)
 * and `content-type`, with `created`, `keyid` (the certificate's SHA-256 fingerprint) and a fresh
 * `nonce`. Manufacturers' uploads and verifier nodes' pack events and alerts are signed alike.
 */
import { createPrivateKey, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import { contentDigest } from './content-digest.ts';
import { algorithmForKey, type HttpMessage, type SignatureParameters, signMessage } from './http-signatures/index.ts';
import { fromPem } from './pki.ts';

export const SIGNED_COMPONENTS = ['@method', '@target-uri', 'content-digest', 'content-type'] as const;

/** A certificate's `keyid`: its SHA-256 fingerprint, lowercase hex. */
export function keyidOf(certificate: X509Certificate): string {
  return certificate.fingerprint256.replaceAll(':', '').toLowerCase();
}

export class RequestSigner {
  readonly keyid: string;
  private readonly key: KeyObject;
  private readonly alg: NonNullable<ReturnType<typeof algorithmForKey>>;

  /** `certPem`: the client certificate (leaf first; a chain may follow); `keyPem`: its key. */
  constructor(certPem: string, keyPem: string) {
    const leaf = fromPem(certPem, 'CERTIFICATE')[0];
    if (!leaf) throw new Error('The certificate file holds no certificate');
    this.keyid = keyidOf(new X509Certificate(leaf));
    this.key = createPrivateKey(keyPem);
    const alg = algorithmForKey(this.key);
    if (!alg) throw new Error('This key type cannot sign packtrust requests (P-256, Ed25519 or RSA)');
    this.alg = alg;
  }

  /** The headers of a signed write: content-type, content-digest, signature-input, signature. */
  sign(
    method: string,
    targetUri: string,
    body: Buffer,
    contentType = 'application/json',
    params: Partial<SignatureParameters> = {},
  ): { headers: Record<string, string>; message: HttpMessage } {
    const headers: Record<string, string> = { 'content-type': contentType, 'content-digest': contentDigest(body) };
    const message: HttpMessage = { method, targetUri, headers };
    const signed = signMessage(message, {
      label: 'sig1',
      components: [...SIGNED_COMPONENTS],
      params: {
        created: Math.floor(Date.now() / 1000),
        keyid: this.keyid,
        nonce: randomBytes(16).toString('base64url'),
        ...params,
      } as SignatureParameters,
      key: this.key,
      alg: this.alg,
    });
    headers['signature-input'] = signed.signatureInput;
    headers.signature = signed.signature;
    return { headers, message };
  }
}
