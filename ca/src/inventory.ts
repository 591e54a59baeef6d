import type { Database, Store } from '../../common/src/store.ts';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import type { RevocationReason, RevokedEntry } from './crl.ts';
import { NotInitialised, SerialUnknown } from './errors.ts';
import type { KeyAlgorithm } from './keys.ts';
import type { OnboardingData } from './profiles.ts';

export type CertStatus = 'valid' | 'revoked' | 'expired';

/** One issued certificate as the inventory keeps it: the onboarding data it was issued for, and more. */
export interface CertRecord extends OnboardingData {
  /** Normalised (common/src/vocabulary.ts); the key of the record. */
  serial: string;
  keyType: string;
  notBefore: number;
  notAfter: number;
  issuedAt: number;
  issuedBy: string;
  renewedFrom?: string | undefined;
  fingerprint: string;
  der: Buffer;
  revokedAt?: number | undefined;
  revocationReason?: RevocationReason | undefined;
  revokedBy?: string | undefined;
}

export function statusOf(record: CertRecord, now = Date.now()): CertStatus {
  if (record.revokedAt !== undefined) return 'revoked';
  return record.notAfter < now ? 'expired' : 'valid';
}

/** The CA's own state: its certificates, key algorithm, public URL and the current CRLs. */
export interface CaMeta {
  keyAlgorithm: KeyAlgorithm;
  publicUrl: string;
  rootCert: Buffer;
  issuingCert: Buffer;
  serverCert: Buffer;
  crlValidityHours: number;
  crlNumber: number;
  crlNextUpdate: number;
  rootCrlNextUpdate: number;
  createdAt: number;
}

/** Certificates by serial, an organisation index, the revoked set (what the CRL lists) and the CA meta. */
export class Inventory {
  private readonly certs: Database<CertRecord, string>;
  private readonly byOrg: Database<string, string>;
  private readonly revoked: Database<RevokedEntry & { notAfter: number }, string>;
  private readonly meta: Database<CaMeta, string>;
  private readonly crls: Database<Buffer, string>;

  constructor(store: Store) {
    this.certs = store.db('certificates');
    this.byOrg = store.db('certificates-by-org', { dupSort: true, encoding: 'string' });
    this.revoked = store.db('revoked');
    this.meta = store.db('ca-meta');
    // CRLs apart from the meta record: a 100,000-entry CRL is megabytes, and the meta is read often.
    this.crls = store.db('crls', { encoding: 'binary' });
  }

  crl(which: 'issuing' | 'root'): Buffer {
    return this.crls.get(which) ?? Buffer.alloc(0);
  }

  /** Inside a write transaction. */
  putCrl(which: 'issuing' | 'root', der: Buffer): void {
    this.crls.putSync(which, der);
  }

  getMeta(): CaMeta | undefined {
    return this.meta.get('ca');
  }

  /** The meta record of an initialised CA. */
  requireMeta(): CaMeta {
    const meta = this.getMeta();
    if (!meta) throw new NotInitialised('CA metadata is missing');
    return meta;
  }

  /** Inside a write transaction. */
  putMeta(meta: CaMeta): void {
    this.meta.putSync('ca', meta);
  }

  /** The record of a normalised serial (the OCSP responder's and the admin gate's lookup). */
  get(serial: string): CertRecord | undefined {
    return this.certs.get(serial);
  }

  /** The record of a serial as a person or a library wrote it (any hex form); SerialUnknown if none. */
  require(serial: string): CertRecord {
    const normalised = normaliseSerial(serial);
    const record = normalised === undefined ? undefined : this.certs.get(normalised);
    if (!record) throw new SerialUnknown(`No certificate with serial number ${serial}`);
    return record;
  }

  /** Inside a write transaction. */
  add(record: CertRecord): void {
    this.certs.putSync(record.serial, record);
    this.byOrg.putSync(record.org, record.serial);
  }

  /** Inside a write transaction. */
  markRevoked(record: CertRecord, reason: RevocationReason, at: number, by: string): CertRecord {
    const updated: CertRecord = { ...record, revokedAt: at, revocationReason: reason, revokedBy: by };
    this.certs.putSync(record.serial, updated);
    this.revoked.putSync(record.serial, { serial: record.serial, revokedAt: at, reason, notAfter: record.notAfter });
    return updated;
  }

  /** Revoked certificates not yet expired: expired ones may leave the CRL (RFC 5280 §3.3). */
  *revokedForCrl(now: number): Iterable<RevokedEntry> {
    for (const { value } of this.revoked.getRange({ snapshot: false })) {
      if (value.notAfter >= now) yield { serial: value.serial, revokedAt: value.revokedAt, reason: value.reason };
    }
  }

  list(filter: { org?: string | undefined; status?: CertStatus | undefined } = {}, now = Date.now()): CertRecord[] {
    const records: CertRecord[] = [];
    if (filter.org !== undefined) {
      for (const serial of this.byOrg.getValues(filter.org)) {
        const r = this.certs.get(serial);
        if (r) records.push(r);
      }
    } else {
      for (const { value } of this.certs.getRange({ snapshot: false })) records.push(value);
    }
    const selected = filter.status ? records.filter((r) => statusOf(r, now) === filter.status) : records;
    return selected.sort((a, b) => a.issuedAt - b.issuedAt);
  }

  count(): number {
    return this.certs.getCount();
  }

  /** Certificates revoked (the revoked set the CRLs are made from). */
  revokedCount(): number {
    return this.revoked.getCount();
  }
}
