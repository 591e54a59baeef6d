import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { contentDigest } from '../../common/src/content-digest.ts';
import { algorithmForKey, type HttpMessage, signMessage } from '../../common/src/http-signatures/index.ts';
import { ReceiptKeyUnsupported } from './errors.ts';

export interface ReceiptSigner {
  key: KeyObject;
  /** SHA-256 fingerprint of the gateway's certificate, hex: the receipt's `keyid`. */
  keyid: string;
}

export interface SignedResponse {
  status: number;
  body: Buffer;
  headers: Record<string, string>;
}

/**
 * The gateway's answer to an accepted write, signed with RFC 9421 over `@status`, its
 * `content-digest` and the request's own signature (`"signature";req;key=<label>`): the
 * manufacturer's receipt that the hub accepted exactly that request.
 */
export function signReceipt(
  request: HttpMessage,
  requestLabel: string,
  status: number,
  payload: unknown,
  signer: ReceiptSigner,
  contentType = 'application/json',
  now = Date.now(),
): SignedResponse {
  const body = Buffer.from(JSON.stringify(payload));
  const headers: Record<string, string> = { 'content-type': contentType, 'content-digest': contentDigest(body) };
  const alg = algorithmForKey(signer.key);
  if (!alg) throw new ReceiptKeyUnsupported('The gateway key cannot make an accepted signature algorithm');
  const signed = signMessage(
    { status, headers, request },
    {
      label: 'receipt',
      components: ['@status', 'content-digest', ['signature', { req: true, key: requestLabel }]],
      params: { created: Math.floor(now / 1000), keyid: signer.keyid, nonce: randomBytes(12).toString('base64url') },
      key: signer.key,
      alg,
    },
  );
  return {
    status,
    body,
    headers: { ...headers, 'signature-input': signed.signatureInput, signature: signed.signature },
  };
}
