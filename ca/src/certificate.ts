import { createHash, randomBytes } from 'node:crypto';
import { x509 } from '../../common/src/pki.ts';
import { POLICY_OIDS } from '../../common/src/vocabulary.ts';
import { explicit, extension, octetString, sequence, smallInteger, time, unsignedInteger } from './der.ts';
import { CaCertificateInvalid } from './errors.ts';
import type { OnboardingData, Profile } from './profiles.ts';
import type { Signer } from './signer.ts';

export interface LeafCertificateInput {
  serial: string;
  subject: x509.Name;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo, DER, as the requester sent it. */
  spki: Buffer;
  /** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1). */
  keyId: Buffer;
  profile: Profile;
  data: OnboardingData;
}

/**
 * Assembles and signs end-entity certificates. The extensions come from @peculiar/x509's
 * extension classes (their DER is cached per profile, as it only changes with the profile); the
 * TBSCertificate envelope is written straight to DER and signed with node:crypto, because the
 * generic ASN.1 path cost about 3 ms of CPU per certificate, three times the issuance budget.
 */
export class LeafCertificateBuilder {
  private readonly staticExtensions = new Map<string, Buffer[]>();
  private readonly issuerName: Buffer;
  private readonly authorityKeyId: Buffer;

  constructor(
    issuer: x509.X509Certificate,
    private readonly signer: Signer,
    private readonly publicUrl: string,
  ) {
    this.issuerName = Buffer.from(issuer.subjectName.toArrayBuffer());
    this.authorityKeyId = subjectKeyIdOf(issuer);
  }

  build(input: LeafCertificateInput): Buffer {
    const extensions = [...this.extensionsOf(input.profile), extension('2.5.29.14', octetString(input.keyId))];
    const sans = [
      ...input.data.dns.map((value) => ({ type: 'dns' as const, value })),
      ...input.data.ip.map((value) => ({ type: 'ip' as const, value })),
    ];
    if (sans.length > 0) extensions.push(Buffer.from(new x509.SubjectAlternativeNameExtension(sans, false).rawData));
    const tbs = sequence(
      explicit(0, smallInteger(2)), // v3
      unsignedInteger(Buffer.from(input.serial, 'hex')),
      this.signer.algorithmIdentifier,
      this.issuerName,
      sequence(time(input.notBefore), time(input.notAfter)),
      Buffer.from(input.subject.toArrayBuffer()),
      input.spki,
      explicit(3, sequence(...extensions)),
    );
    return this.signer.signed(tbs);
  }

  private extensionsOf(profile: Profile): Buffer[] {
    let cached = this.staticExtensions.get(profile.name);
    if (!cached) {
      const url = this.publicUrl;
      cached = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(profile.extendedKeyUsage, false),
        new x509.AuthorityKeyIdentifierExtension(this.authorityKeyId.toString('hex')),
        new x509.CertificatePolicyExtension([POLICY_OIDS[profile.name]]),
        new x509.CRLDistributionPointsExtension([`${url}/crl`]),
        new x509.AuthorityInfoAccessExtension({ ocsp: `${url}/ocsp`, caIssuers: `${url}/ca/issuing.der` }),
      ].map((e) => Buffer.from(e.rawData));
      this.staticExtensions.set(profile.name, cached);
    }
    return cached;
  }
}

export function keyIdOf(subjectPublicKeyBits: Buffer): Buffer {
  return createHash('sha1').update(subjectPublicKeyBits).digest();
}

/** The key identifier a CA certificate gives its key, which what it signs names as their authority's. */
export function subjectKeyIdOf(ca: x509.X509Certificate): Buffer {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new CaCertificateInvalid(`The CA certificate ${ca.subject} has no subject key identifier`);
  return Buffer.from(ski.keyId, 'hex');
}

/**
 * A new serial: a positive 128-bit integer, hex, whose first octet lies in 0x40..0x7f, so it
 * needs no DER sign octet and is already in normalised form (common/src/vocabulary.ts). RFC 5280
 * §4.1.2.2 allows 20 octets; the CA/Browser Forum asks for 64 random bits or more.
 */
export function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}
