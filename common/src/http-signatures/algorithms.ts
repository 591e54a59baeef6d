import { constants, type KeyObject, sign, verify } from 'node:crypto';
import { keyTypeOf, type SigningKeyType } from '../vocabulary.ts';

/** The RFC 9421 §3.3 algorithms packtrust accepts; all asymmetric, so a receipt proves its signer. */
const SIGNATURE_ALGORITHMS = ['ecdsa-p256-sha256', 'ed25519', 'rsa-pss-sha512'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

export function isSignatureAlgorithm(value: unknown): value is SignatureAlgorithm {
  return (SIGNATURE_ALGORITHMS as readonly unknown[]).includes(value);
}

/**
 * The one algorithm of each signing key type (common/src/vocabulary.ts `SIGNING_KEY_TYPES`, the
 * keys the CA gives the profiles that sign): a record over that type, so the two cannot disagree.
 */
const ALGORITHM_OF: Readonly<Record<SigningKeyType, SignatureAlgorithm>> = {
  'P-256': 'ecdsa-p256-sha256',
  Ed25519: 'ed25519',
  RSA: 'rsa-pss-sha512',
};

/** The algorithm a key can make, from its type: the key decides, never the message (RFC 9421 §7.3.6). */
export function algorithmForKey(key: KeyObject): SignatureAlgorithm | undefined {
  const type = keyTypeOf(key);
  return type && type in ALGORITHM_OF ? ALGORITHM_OF[type as SigningKeyType] : undefined;
}

export function signBase(alg: SignatureAlgorithm, base: Buffer, key: KeyObject): Buffer {
  switch (alg) {
    case 'ecdsa-p256-sha256':
      // RFC 9421 §3.3.4: r ‖ s, not DER.
      return sign('sha256', base, { key, dsaEncoding: 'ieee-p1363' });
    case 'ed25519':
      return sign(null, base, key);
    case 'rsa-pss-sha512':
      return sign('sha512', base, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 });
  }
}

export function verifyBase(alg: SignatureAlgorithm, base: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    switch (alg) {
      case 'ecdsa-p256-sha256':
        return verify('sha256', base, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'ed25519':
        return verify(null, base, key, signature);
      case 'rsa-pss-sha512':
        return verify('sha512', base, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }, signature);
    }
  } catch {
    return false;
  }
}
