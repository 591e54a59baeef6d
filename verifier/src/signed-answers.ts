import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type Item, serializeItem } from 'structured-headers';
import { contentDigest } from '../../common/src/content-digest.ts';
import {
  algorithmForKey,
  type HttpMessage,
  parseAcceptSignature,
  type SignatureAlgorithm,
  SignatureError,
  type SignatureParameters,
  signMessage,
} from '../../common/src/http-signatures/index.ts';
import { fromPem } from '../../common/src/pki.ts';
import { keyidOf } from '../../common/src/signed-request.ts';
import { AcceptSignatureInvalid } from './errors.ts';

/**
 * Answers signed for pharmacies that ask (RFC 9421 §5.1 `Accept-Signature`), with the node's key:
 * the key of its TLS certificate, which the packtrust CA issued; `keyid` is that certificate's
 * SHA-256 fingerprint, as in the hub's receipts. A signature always covers the default set: the
 * answer's `@status` and `content-digest` (RFC 9530; the body repeats the request's transaction
 * id, operation and pack, so the digest covers them) and the request's `"@method";req` and
 * `"@path";req`. A requester may add components from COVERABLE and ask for `created`, `keyid`,
 * `alg` (the node's own), `nonce` and `tag`; anything else is refused before the request is acted
 * on. One signature per answer. What a pharmacy then does with the signature (keep it, check the
 * certificate chain and its revocation) is its own business (docs/pharmacy.md).
 */

/** Covered by every signed answer. */
const DEFAULT_COMPONENTS = ['"@status"', '"content-digest"', '"@method";req', '"@path";req'] as const;

/**
 * What else a pharmacy may ask to have covered: parts of its request, and the answer's type. Not
 * the authority (`@authority`, `@target-uri`, `@scheme`): the node knows it only from the Host
 * header the caller sent, so it would sign a name of the caller's choosing as its own.
 */
const COVERABLE = new Set<string>([
  ...DEFAULT_COMPONENTS,
  '"content-type"',
  '"@request-target";req',
  '"@query";req',
  '"content-type";req',
]);

/** A requested `nonce` or `tag`: a short token of printable characters. */
const PARAMETER_TEXT = /^[\x21-\x7e]{1,128}$/;

/** What a request asked to have signed, checked: the signature's label, components and parameters. */
export interface SignatureRequest {
  label: string;
  components: Item[];
  params: { nonce?: string; tag?: string };
}

export class AnswerSigner {
  readonly keyid: string;
  private readonly key: KeyObject;
  private readonly alg: SignatureAlgorithm;

  /** `certPem`: the node's certificate, leaf first; `keyPem`: its key. */
  constructor(certPem: string, keyPem: string) {
    const leaf = fromPem(certPem, 'CERTIFICATE')[0];
    if (!leaf) throw new Error('The node certificate file holds no certificate');
    this.keyid = keyidOf(new X509Certificate(leaf));
    this.key = createPrivateKey(keyPem);
    const alg = algorithmForKey(this.key);
    if (!alg) throw new Error('The node key cannot sign answers (P-256, Ed25519 or RSA)');
    this.alg = alg;
  }

  /** The signature an `Accept-Signature` value asks for; a 400 problem for one the node cannot make. */
  requested(header: string): SignatureRequest {
    let requests: ReturnType<typeof parseAcceptSignature>;
    try {
      requests = parseAcceptSignature(header);
    } catch (err) {
      if (err instanceof SignatureError) throw new AcceptSignatureInvalid(err.message);
      throw err;
    }
    if (requests.length !== 1)
      throw new AcceptSignatureInvalid(`Ask for one signature; Accept-Signature names ${requests.length}`);
    const { label, components, params } = requests[0]!;
    const covered = DEFAULT_COMPONENTS.map((c) => c as string);
    const out: Item[] = DEFAULT_COMPONENTS.map((c) => itemOf(c));
    for (const c of components) {
      const id = serializeItem(c);
      if (!COVERABLE.has(id))
        throw new AcceptSignatureInvalid(
          `The node cannot cover ${id}; it covers ${[...COVERABLE].join(' ')} (the first ${DEFAULT_COMPONENTS.length} always)`,
        );
      if (!covered.includes(id)) {
        covered.push(id);
        out.push(c);
      }
    }
    const wanted: SignatureRequest['params'] = {};
    for (const [name, value] of params) {
      if (name === 'created' && value === true) continue;
      if (name === 'keyid' && value === this.keyid) continue;
      if (name === 'alg' && value === this.alg) continue;
      if ((name === 'nonce' || name === 'tag') && typeof value === 'string' && PARAMETER_TEXT.test(value)) {
        wanted[name] = value;
        continue;
      }
      throw new AcceptSignatureInvalid(
        `The node cannot honour the parameter ${name}=${String(value)}: it signs with created, keyid "${this.keyid}" and alg "${this.alg}", and takes a nonce and a tag of up to 128 printable characters`,
      );
    }
    return { label, components: out, params: wanted };
  }

  /** The headers that sign an answer: `content-digest`, `signature-input`, `signature`. */
  sign(
    request: HttpMessage,
    status: number,
    headers: Record<string, string | undefined>,
    body: Buffer,
    wanted: SignatureRequest,
    now = Date.now(),
  ): Record<string, string> {
    const digest = contentDigest(body);
    const params: SignatureParameters = {
      created: Math.floor(now / 1000),
      keyid: this.keyid,
      alg: this.alg,
      ...wanted.params,
    };
    const signed = signMessage(
      { status, headers: { ...headers, 'content-digest': digest }, request },
      {
        label: wanted.label,
        components: wanted.components.map(([name, p]) => [name as string, Object.fromEntries(p)] as const) as [
          string,
          Record<string, string | boolean>,
        ][],
        params,
        key: this.key,
        alg: this.alg,
      },
    );
    return { 'content-digest': digest, 'signature-input': signed.signatureInput, signature: signed.signature };
  }
}

function itemOf(id: string): Item {
  const [, name, req] = /^"([^"]+)"(;req)?$/.exec(id)!;
  return [name!, new Map(req ? [['req', true]] : [])];
}
