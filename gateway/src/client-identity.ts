import { type KeyObject, X509Certificate } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { peerCertificateChain } from '../../common/src/http.ts';
import { bytes, x509 } from '../../common/src/pki.ts';
import { keyidOf } from '../../common/src/signed-request.ts';
import {
  normaliseSerial,
  POLICY_OIDS,
  PROFILE_NAMES,
  type ProfileName,
  profileKeyProblem,
} from '../../common/src/vocabulary.ts';
import {
  CertificateExpired,
  CertificateRequired,
  CertificateRevoked,
  CertificateUntrusted,
  ProfileNotAllowed,
} from './errors.ts';
import type { CaTrust } from './trust.ts';

/** The profiles a caller of the hub can hold: every profile onboarding issues. */
export type ClientProfile = ProfileName;

/** Who is calling, as the packtrust CA certified it. */
export interface ClientIdentity {
  serial: string;
  /** The organisation id (subject organizationIdentifier): the owner of what it uploads. */
  org: string;
  name: string;
  profile: ClientProfile;
  market?: string | undefined;
  publicKey: KeyObject;
  /** SHA-256 of the DER certificate, hex: the `keyid` of its HTTP message signatures. */
  fingerprint: string;
  certificate: Buffer;
  notAfter: number;
}

/**
 * Identifies the client of a request from its TLS certificate, checked on every request: issued
 * by the packtrust issuing CA, within its validity, not on the current CRL, of an allowed profile.
 * The profile is the certificate's packtrust policy OID, and the subject's OU must name the same
 * profile. Parsed certificates are cached by fingerprint; validity and revocation are never cached.
 */
export class ClientIdentifier {
  private readonly cache = new Map<string, ClientIdentity>();

  constructor(readonly trust: CaTrust) {}

  identify(request: FastifyRequest, allowed: readonly ClientProfile[]): ClientIdentity {
    const der = peerCertificateChain(request)[0];
    if (!der) throw new CertificateRequired('Present a client certificate issued by the packtrust CA (mutual TLS)');
    const identity = this.parse(der);
    const now = Date.now();
    if (now > identity.notAfter) throw new CertificateExpired(`Certificate ${identity.serial} expired`);
    if (this.trust.isRevoked(identity.serial))
      throw new CertificateRevoked(`Certificate ${identity.serial} is revoked`);
    if (!allowed.includes(identity.profile)) {
      throw new ProfileNotAllowed(
        `A ${identity.profile} certificate may not use this API (allowed: ${allowed.join(', ')})`,
      );
    }
    return identity;
  }

  private parse(der: Buffer): ClientIdentity {
    const key = der.toString('base64');
    const cached = this.cache.get(key);
    if (cached) return cached;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      throw new CertificateUntrusted('The client certificate cannot be parsed');
    }
    if (!cert.checkIssued(this.trust.issuing) || !cert.verify(this.trust.issuing.publicKey)) {
      throw new CertificateUntrusted('The client certificate was not issued by the packtrust issuing CA');
    }
    if (Date.now() < Date.parse(cert.validFrom))
      throw new CertificateUntrusted('The client certificate is not valid yet');
    const subject = subjectFields(cert.subject);
    const profile = profileOf(der);
    const org = subject.organizationIdentifier;
    const serial = normaliseSerial(cert.serialNumber);
    if (!profile || subject.OU !== profile || !org || !serial) {
      throw new CertificateUntrusted('The client certificate has no packtrust profile or organisation');
    }
    // The keys each profile may hold are the CA's rule too (common/src/vocabulary.ts); a
    // certificate issued before the CA checked them is refused here, not at its first signature.
    const keyProblem = profileKeyProblem(profile, cert.publicKey);
    if (keyProblem) throw new CertificateUntrusted(keyProblem);
    const identity: ClientIdentity = {
      serial,
      org,
      name: subject.CN ?? org,
      profile,
      market: subject.C,
      publicKey: cert.publicKey,
      fingerprint: keyidOf(cert),
      certificate: der,
      notAfter: Date.parse(cert.validTo),
    };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, identity);
    return identity;
  }
}

const CERTIFICATE_POLICIES = '2.5.29.32';
const hex = (value: ArrayBuffer): string => Buffer.from(value).toString('hex');

/**
 * The certificatePolicies extension (RFC 5280 §4.2.1.4) the CA writes for each profile, DER, hex:
 * one policy, the profile's (common/src/vocabulary.ts), without qualifiers. A certificate's
 * extension is compared as DER, because @peculiar/x509 reads the 128-bit arc of packtrust's OIDs
 * back as hex in braces, not as the decimal number it is.
 */
const PROFILE_BY_POLICIES = new Map<string, ClientProfile>(
  PROFILE_NAMES.map((name) => [hex(new x509.CertificatePolicyExtension([POLICY_OIDS[name]]).value), name]),
);

/** The profile whose policy the certificate carries, alone; undefined for anything else. Read once per certificate. */
function profileOf(der: Buffer): ClientProfile | undefined {
  const policies = new x509.X509Certificate(bytes(der)).getExtension(CERTIFICATE_POLICIES);
  return policies ? PROFILE_BY_POLICIES.get(hex(policies.value)) : undefined;
}

/** The attributes of a certificate subject as node:crypto writes it (`KEY=value` lines). */
export function subjectFields(subject: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1);
  }
  return fields;
}
