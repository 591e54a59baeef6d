import type { FastifyRequest } from 'fastify';
import type { Item } from 'structured-headers';
import { serializeItem } from 'structured-headers';
import { bodyDigest, checkContentDigest } from '../../common/src/content-digest.ts';
import {
  algorithmForKey,
  type HttpMessage,
  isSignatureAlgorithm,
  type ParsedSignature,
  parseSignatures,
  SignatureError,
  verifySignature,
} from '../../common/src/http-signatures/index.ts';
import { SIGNED_COMPONENTS } from '../../common/src/signed-request.ts';
import type { ClientIdentity } from './client-identity.ts';
import { DigestMismatch, SignatureExpired, SignatureInvalid, SignatureMissing, SignatureStale } from './errors.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The URL clients reach the hub at (configuration `publicUrl`; by default the listener's own
     * `https://host:port`): the scheme and authority of every signed write's `@target-uri`.
     */
    hubPublicUrl(): string;
  }
}

/**
 * The `@target-uri` of a request (RFC 9421 §2.2.2) as the hub reads it: its public URL, then the
 * request target as received (origin-form, RFC 9112 §3.2.1). The client's Host header has no say:
 * a signature made for another authority does not verify here, whatever Host it is sent with.
 * Clients build the same string from the URL they send to (`new URL(path, hubUrl)`).
 */
export function targetUriOf(request: Pick<FastifyRequest, 'server' | 'url'>): string {
  const base = new URL(request.server.hubPublicUrl());
  return `${base.origin}${base.pathname.replace(/\/$/, '')}${request.url}`;
}

/** Components every write must cover (ARCHITECTURE.md, "The gateway"), as serialized in `Signature-Input`. */
const REQUIRED_COMPONENTS = SIGNED_COMPONENTS.map((c) => `"${c}"`);

export interface VerifiedRequestSignature {
  label: string;
  created: number;
  nonce: string;
  alg: string;
  base: string;
  /** The `Signature` member of the request, for the receipt's `"signature";req;key=…`. */
  signature: ParsedSignature;
}

/**
 * Checks a write request's RFC 9530 digest and its RFC 9421 signature: made with the key of the
 * client's mTLS certificate (`keyid` = the certificate's SHA-256 fingerprint), covering the
 * required components, with `created`, `keyid` and `nonce`, `created` within ±`windowSeconds`,
 * and, when the signer set `expires` (RFC 9421 §2.3), not after it nor with it before `created`.
 * `message.targetUri` is the caller's: {@link targetUriOf}.
 * Replay (a nonce seen before) is decided by the caller, atomically with storing the evidence.
 */
export function verifyRequestSignature(
  message: HttpMessage,
  body: Buffer,
  client: ClientIdentity,
  windowSeconds: number,
  now = Date.now(),
): VerifiedRequestSignature {
  const digest = checkContentDigest(firstValue(message.headers['content-digest']), bodyDigest(body));
  if (!digest.ok) throw new DigestMismatch(digest.reason);
  let signatures: ParsedSignature[];
  try {
    signatures = parseSignatures(message);
  } catch (err) {
    throw new SignatureMissing((err as Error).message);
  }
  const mine = signatures.filter((s) => s.params.get('keyid') === client.fingerprint);
  if (mine.length !== 1) {
    throw new SignatureMissing(
      `Exactly one signature must have keyid="${client.fingerprint}" (the SHA-256 fingerprint of your client certificate)`,
    );
  }
  const parsed = mine[0]!;
  const covered = new Set(parsed.components.map((c: Item) => serializeItem(c)));
  const missing = REQUIRED_COMPONENTS.filter((c) => !covered.has(c));
  if (missing.length > 0) throw new SignatureMissing(`The signature must cover ${missing.join(', ')}`);
  const created = parsed.params.get('created');
  const nonce = parsed.params.get('nonce');
  if (typeof created !== 'number' || !Number.isInteger(created))
    throw new SignatureMissing('The signature needs an integer "created" parameter');
  if (typeof nonce !== 'string' || nonce.length < 8 || nonce.length > 128) {
    throw new SignatureMissing('The signature needs a "nonce" parameter of 8 to 128 characters');
  }
  const skew = created - Math.floor(now / 1000);
  if (Math.abs(skew) > windowSeconds) {
    throw new SignatureStale(`"created" is ${skew} s from the gateway's clock; the window is ±${windowSeconds} s`);
  }
  const expires = parsed.params.get('expires');
  if (expires !== undefined) {
    if (typeof expires !== 'number' || !Number.isInteger(expires) || expires < created) {
      throw new SignatureInvalid('"expires" must be an integer time no earlier than "created"');
    }
    if (Math.floor(now / 1000) > expires) {
      throw new SignatureExpired(`The signature expired at ${new Date(expires * 1000).toISOString()}`);
    }
  }
  const alg = algorithmForKey(client.publicKey);
  if (!alg) throw new SignatureInvalid('The client certificate key cannot make an accepted signature algorithm');
  const declared = parsed.params.get('alg');
  if (declared !== undefined && (!isSignatureAlgorithm(declared) || declared !== alg)) {
    throw new SignatureInvalid(`"alg" must be ${alg} for this certificate's key`);
  }
  let base: string;
  try {
    base = verifySignature(message, parsed, client.publicKey, alg);
  } catch (err) {
    if (err instanceof SignatureError) {
      throw new SignatureInvalid(`${err.message} (the hub signs and verifies @target-uri as ${message.targetUri})`);
    }
    throw err;
  }
  return { label: parsed.label, created, nonce, alg, base, signature: parsed };
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
