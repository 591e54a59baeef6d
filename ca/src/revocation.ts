import type { x509 } from '../../common/src/pki.ts';
import type { Store } from '../../common/src/store.ts';
import type { AuditLog } from './audit-log.ts';
import { subjectKeyIdOf } from './certificate.ts';
import { buildCrl, type RevocationReason, type RevokedEntry } from './crl.ts';
import { AlreadyRevoked } from './errors.ts';
import type { CaMeta, CertRecord, Inventory } from './inventory.ts';
import type { Signer } from './signer.ts';
import { BACKDATE_MS, DAY_MS } from './validity.ts';

const ROOT_CRL_VALIDITY_DAYS = 90;

/** One CA as a CRL names it: its subject Name and key identifier, and the signer of its key. */
interface CrlIssuer {
  name: Buffer;
  keyId: Buffer;
  signer: Signer;
}

const crlIssuer = (cert: x509.X509Certificate, signer: Signer): CrlIssuer => ({
  name: Buffer.from(cert.subjectName.toArrayBuffer()),
  keyId: subjectKeyIdOf(cert),
  signer,
});

/**
 * Revocation and the CRLs. A revocation, the new CRL that lists it and the audit entry commit in
 * one transaction, so CRL and OCSP clients see it at once; the CRLs are also reissued before
 * their nextUpdate (`refreshCrls`, on the service's timer). The issuing CA's CRL lists the
 * revoked leaves; the root's lists nothing, as the root signs only the issuing CA, which this
 * tool never revokes (a new CA means a new init).
 */
export class Revocation {
  private readonly issuing: CrlIssuer;
  private readonly root: CrlIssuer;

  constructor(
    private readonly state: { store: Store; inventory: Inventory; audit: AuditLog },
    issuing: { cert: x509.X509Certificate; signer: Signer },
    root: { cert: x509.X509Certificate; signer: Signer },
  ) {
    this.issuing = crlIssuer(issuing.cert, issuing.signer);
    this.root = crlIssuer(root.cert, root.signer);
  }

  /** Revokes at once: the inventory, a new CRL and the audit entry commit in one transaction. */
  async revoke(serial: string, reason: RevocationReason, actor: string): Promise<CertRecord> {
    const { store, inventory, audit } = this.state;
    return store.transaction(() => {
      const record = inventory.require(serial);
      if (record.revokedAt !== undefined) {
        throw new AlreadyRevoked(
          `Certificate ${record.serial} was revoked on ${new Date(record.revokedAt).toISOString()}`,
        );
      }
      const now = Date.now();
      const updated = inventory.markRevoked(record, reason, now, actor);
      inventory.putMeta(this.publishCrls(inventory.requireMeta(), now));
      audit.append({ actor, action: 'revoke', serial: record.serial, outcome: 'ok', detail: reason });
      return updated;
    });
  }

  /**
   * Reissues the CRLs when they are within `marginMs` of their nextUpdate (or `force`).
   * Returns whether a new CRL was produced.
   */
  async refreshCrls(options: { marginMs: number; force?: boolean; actor: string }): Promise<boolean> {
    const { store, inventory, audit } = this.state;
    return store.transaction(() => {
      const meta = inventory.requireMeta();
      const now = Date.now();
      const due =
        options.force ||
        meta.crlNextUpdate - now <= options.marginMs ||
        meta.rootCrlNextUpdate - now <= options.marginMs;
      if (!due) return false;
      const fresh = this.publishCrls(meta, now);
      inventory.putMeta(fresh);
      audit.append({ actor: options.actor, action: 'crl', outcome: 'ok', detail: `CRL number ${fresh.crlNumber}` });
      return true;
    });
  }

  /**
   * Inside a write transaction: writes a new issuing-CA CRL (and the root's when it is due),
   * numbered after the last one, and returns the meta record that describes them.
   */
  publishCrls(meta: CaMeta, now: number): CaMeta {
    const crlNumber = meta.crlNumber + 1;
    const fresh: CaMeta = { ...meta, crlNumber, crlNextUpdate: now + meta.crlValidityHours * 3_600_000 };
    const { inventory } = this.state;
    inventory.putCrl(
      'issuing',
      this.crl(this.issuing, crlNumber, now, fresh.crlNextUpdate, inventory.revokedForCrl(now)),
    );
    if (meta.rootCrlNextUpdate - now < (ROOT_CRL_VALIDITY_DAYS / 3) * DAY_MS) {
      fresh.rootCrlNextUpdate = now + ROOT_CRL_VALIDITY_DAYS * DAY_MS;
      inventory.putCrl('root', this.crl(this.root, crlNumber, now, fresh.rootCrlNextUpdate, []));
    }
    return fresh;
  }

  private crl(
    issuer: CrlIssuer,
    crlNumber: number,
    now: number,
    nextUpdate: number,
    entries: Iterable<RevokedEntry>,
  ): Buffer {
    return buildCrl({
      issuerName: issuer.name,
      authorityKeyId: issuer.keyId,
      crlNumber,
      thisUpdate: new Date(now - BACKDATE_MS),
      nextUpdate: new Date(nextUpdate),
      entries,
      signer: issuer.signer,
    });
  }
}
