import { type KeyObject, sign } from 'node:crypto';
import { bitString, nullValue, oid, sequence } from './der.ts';
import { type KeyAlgorithm, type SigningSuite, signingSuite } from './keys.ts';

/**
 * Signs DER structures (CRLs, OCSP responses) with a CA key through node:crypto, the project's
 * hot-path signature primitive. The KeyObject is created once and reused.
 */
export class Signer {
  readonly suite: SigningSuite;
  /** AlgorithmIdentifier of the signatures this signer makes. */
  readonly algorithmIdentifier: Buffer;

  constructor(
    readonly key: KeyObject,
    readonly algorithm: KeyAlgorithm,
  ) {
    this.suite = signingSuite(algorithm);
    const id = oid(this.suite.signatureOid);
    this.algorithmIdentifier = this.suite.nullParams ? sequence(id, nullValue()) : sequence(id);
  }

  sign(data: Buffer): Buffer {
    return sign(this.suite.hash, data, this.key);
  }

  /** `SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }`, the shape of CRLs and OCSP responses. */
  signed(tbs: Buffer): Buffer {
    return sequence(tbs, this.algorithmIdentifier, bitString(this.sign(tbs)));
  }
}
