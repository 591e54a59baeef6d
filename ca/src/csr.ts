import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { derOf } from '../../common/src/pki.ts';
import { children, contentOf, decodeOid, expectTag, rawOf, readRoot } from './der.ts';
import { CsrMalformed, CsrSignatureInvalid, DerError, KeyRejected } from './errors.ts';

/** The key types a packtrust certificate may hold: those the gateway's RFC 9421 checks and TLS accept. */
export type SubjectKeyType = 'P-256' | 'P-384' | `RSA-${number}` | 'Ed25519';

export interface CheckedCsr {
  /** SubjectPublicKeyInfo, DER, exactly as the requester sent it. */
  spki: Buffer;
  publicKey: KeyObject;
  keyType: SubjectKeyType;
}

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/**
 * The CSR signature algorithms accepted (RFC 5758 §3.2, RFC 4055 §5, RFC 8410 §6): the hash, and
 * the key type that makes them. node:crypto's `verify` takes its algorithm from the key, so an
 * RSA signature declared as ECDSA (or the reverse) would verify if the two were not compared.
 */
const SIGNATURE_ALGORITHMS: Record<
  string,
  { name: string; hash: 'sha256' | 'sha384' | 'sha512' | null; key: 'ec' | 'rsa' | 'ed25519' }
> = {
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256', hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384', hash: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512', hash: 'sha512', key: 'ec' },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption', hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption', hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption', hash: 'sha512', key: 'rsa' },
  // Ed25519 signs the message itself.
  '1.3.101.112': { name: 'Ed25519', hash: null, key: 'ed25519' },
};

const WEAK_OR_UNSUPPORTED: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption (SHA-1 is broken)',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption (MD5 is broken)',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1 (SHA-1 is broken)',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS (sign the CSR with PKCS#1 v1.5 and SHA-256)',
  '1.3.101.113': 'Ed448',
};

/**
 * Parses a PKCS#10 request (PEM or DER) and checks proof of possession and the key type.
 * Nothing the CSR says about its subject or extensions is used: the CA takes those from onboarding.
 */
export function checkCsr(input: Buffer): CheckedCsr {
  let parts: { tbs: Buffer; spki: Buffer; sigOid: string; signature: Buffer };
  try {
    parts = parseCsr(derOf(input, 'CERTIFICATE REQUEST'));
  } catch (err) {
    throw new CsrMalformed(`Not a PKCS#10 certificate signing request: ${(err as Error).message}`, {}, { cause: err });
  }
  const { publicKey, keyType } = checkKey(parts.spki);
  const { sigOid } = parts;
  if (sigOid in WEAK_OR_UNSUPPORTED) {
    throw new CsrSignatureInvalid(`The CSR is signed with ${WEAK_OR_UNSUPPORTED[sigOid]}, which is not accepted`);
  }
  const algorithm = SIGNATURE_ALGORITHMS[sigOid];
  if (!algorithm) throw new CsrSignatureInvalid(`Unsupported CSR signature algorithm ${sigOid}`);
  if (publicKey.asymmetricKeyType !== algorithm.key) {
    throw new CsrSignatureInvalid(
      `The CSR declares ${algorithm.name} but its key is ${keyType}: the signature must be the key's own algorithm`,
    );
  }
  let ok = false;
  try {
    ok = verify(algorithm.hash, parts.tbs, publicKey, parts.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrSignatureInvalid('The CSR signature does not verify with the public key it carries');
  return { spki: parts.spki, publicKey, keyType };
}

/**
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 * (RFC 2986). Read with the small DER reader: issuance is a hot path, and a generic ASN.1 object
 * model spent about 0.4 ms per request here.
 */
function parseCsr(der: Buffer) {
  const root = readRoot(der);
  const [info, alg, sig] = children(der, root);
  expectTag(info, 0x30, 'certificationRequestInfo');
  const [, subject, spki] = children(der, info!);
  expectTag(subject, 0x30, 'subject');
  expectTag(spki, 0x30, 'subjectPKInfo');
  const algOid = expectTag(children(der, expectTag(alg, 0x30, 'signatureAlgorithm'))[0], 0x06, 'algorithm OID');
  const bits = expectTag(sig, 0x03, 'signature');
  if (der[bits.start] !== 0) throw new DerError('DER_VALUE_INVALID', 'signature BIT STRING has unused bits');
  return {
    tbs: rawOf(der, info!),
    spki: Buffer.from(rawOf(der, spki!)),
    sigOid: decodeOid(contentOf(der, algOid)),
    signature: der.subarray(bits.start + 1, bits.end),
  };
}

/** Accepts P-256, P-384, RSA of 2048 to 8192 bits and Ed25519; names the reason for anything else. */
function checkKey(spki: Buffer): { publicKey: KeyObject; keyType: SubjectKeyType } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new KeyRejected(`The public key cannot be read (unknown curve or key type): ${(err as Error).message}`);
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  switch (publicKey.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') return { publicKey, keyType: 'P-256' };
      if (details.namedCurve === 'secp384r1') return { publicKey, keyType: 'P-384' };
      throw new KeyRejected(`Elliptic curve ${details.namedCurve ?? 'unknown'} is not accepted; use P-256 or P-384`);
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new KeyRejected(`RSA key of ${bits} bits is too weak; at least ${MIN_RSA_BITS}`);
      if (bits > MAX_RSA_BITS) throw new KeyRejected(`RSA key of ${bits} bits is larger than ${MAX_RSA_BITS}`);
      return { publicKey, keyType: `RSA-${bits}` };
    }
    case 'ed25519':
      return { publicKey, keyType: 'Ed25519' };
    default:
      throw new KeyRejected(
        `Key type ${publicKey.asymmetricKeyType ?? 'unknown'} is not accepted; use P-256, P-384, RSA (2048+) or Ed25519`,
      );
  }
}

/**
 * A key that comes without a CSR, under the same key rules, with no proof of possession to check:
 * the key of a certificate renewed for the same key, or one the CA generated itself at init.
 */
export function checkSpki(spki: Buffer): CheckedCsr {
  return { ...checkKey(spki), spki };
}

/** The subjectPublicKey BIT STRING contents of a SubjectPublicKeyInfo (what key identifiers hash). */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const root = readRoot(spki);
  const bits = expectTag(children(spki, root)[1], 0x03, 'subjectPublicKey');
  return spki.subarray(bits.start + 1, bits.end);
}
