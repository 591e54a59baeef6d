import { createHash } from 'node:crypto';
import { bytes, toPem, x509 } from '../../common/src/pki.ts';
import type { Store } from '../../common/src/store.ts';
import type { AuditLog } from './audit-log.ts';
import { keyIdOf, type LeafCertificateBuilder, newSerial } from './certificate.ts';
import { type CheckedCsr, checkCsr, checkSpki, subjectPublicKeyBits } from './csr.ts';
import { NotRenewable } from './errors.ts';
import type { CertRecord, Inventory } from './inventory.ts';
import { checkProfileKey, type OnboardingData, PROFILES, subjectOf } from './profiles.ts';
import { BACKDATE_MS, DAY_MS } from './validity.ts';

/** An issuance request: a CSR and the onboarding data, unchecked (both are checked on issuance). */
export interface IssueRequest {
  csr: Buffer;
  profile: string;
  org?: string | undefined;
  name?: string | undefined;
  market?: string | undefined;
  dns?: string[] | undefined;
  ip?: string[] | undefined;
}

export interface IssuedCertificate {
  record: CertRecord;
  certificatePem: string;
  /** Issuing CA then root, PEM. */
  chainPem: string;
}

/**
 * Issuance and renewal: a leaf certificate for a checked key and onboarding data, recorded in
 * the inventory with its audit entry in one transaction. What it leaves to its caller: checking
 * the request (csr.ts, profiles.ts), and auditing refusals (authority.ts).
 */
export class Issuer {
  constructor(
    private readonly state: { store: Store; inventory: Inventory; audit: AuditLog },
    private readonly issuingCert: x509.X509Certificate,
    private readonly leafBuilder: LeafCertificateBuilder,
    private readonly chainPem: string,
  ) {}

  /** Issues a certificate for `key`; `renewedFrom` names the predecessor of a renewal. */
  async issue(key: CheckedCsr, data: OnboardingData, actor: string, renewedFrom?: string): Promise<IssuedCertificate> {
    const profile = PROFILES[data.profile];
    const now = Date.now();
    const serial = newSerial();
    const notAfter = Math.min(now + profile.validityDays * DAY_MS, this.issuingCert.notAfter.getTime());
    const der = this.leafBuilder.build({
      serial,
      subject: subjectOf(data),
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      spki: key.spki,
      keyId: keyIdOf(subjectPublicKeyBits(key.spki)),
      profile,
      data,
    });
    const record: CertRecord = {
      serial,
      ...data,
      keyType: key.keyType,
      notBefore: now - BACKDATE_MS,
      notAfter,
      issuedAt: now,
      issuedBy: actor,
      renewedFrom,
      fingerprint: createHash('sha256').update(der).digest('hex'),
      der,
    };
    const { store, inventory, audit } = this.state;
    await store.transaction(() => {
      inventory.add(record);
      audit.append({
        actor,
        action: renewedFrom ? 'renew' : 'issue',
        serial,
        outcome: 'ok',
        detail: `${data.profile} for ${data.org}${renewedFrom ? ` (renews ${renewedFrom})` : ''}`,
      });
    });
    return { record, certificatePem: toPem(der, 'CERTIFICATE'), chainPem: this.chainPem };
  }
}

/**
 * What the successor of `old` is issued for: the same onboarding data, and the key of `csr`, or
 * the same key when there is none. A revoked certificate has no successor (issue a new one), and
 * the admin listener's certificate is renewed by `init` only.
 */
export function successorOf(old: CertRecord, csr: Buffer | undefined): { key: CheckedCsr; data: OnboardingData } {
  if (old.revokedAt !== undefined) throw new NotRenewable(`Certificate ${old.serial} is revoked; issue a new one`);
  if (old.profile === 'ca-server') throw new NotRenewable('The admin listener certificate is renewed by init');
  const { profile, org, name, market, dns, ip } = old;
  const key = csr ? checkCsr(csr) : checkSpki(Buffer.from(new x509.X509Certificate(bytes(old.der)).publicKey.rawData));
  checkProfileKey(profile, key);
  return { key, data: { profile, org, name, market, dns, ip } };
}
