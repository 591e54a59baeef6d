import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { PacktrustError } from '../../common/src/errors.ts';
import { bytes, toPem, x509 } from '../../common/src/pki.ts';
import { Store } from '../../common/src/store.ts';
import { type AuditAction, AuditLog, type AuditRecord } from './audit-log.ts';
import { LeafCertificateBuilder } from './certificate.ts';
import type { RevocationReason } from './crl.ts';
import { checkCsr, checkSpki, subjectPublicKeyBits } from './csr.ts';
import { NotInitialised } from './errors.ts';
import {
  type CaKeys,
  caPaths,
  createHierarchy,
  type HierarchyOptions,
  readCaKeys,
  readServerKey,
} from './hierarchy.ts';
import { type CaMeta, type CertRecord, type CertStatus, Inventory } from './inventory.ts';
import { type IssuedCertificate, type IssueRequest, Issuer, successorOf } from './issuance.ts';
import { generateKeyPair } from './keys.ts';
import { OcspResponder, serialStatusOf } from './ocsp.ts';
import { checkProfileKey, PROFILES, profileByName, validateOnboarding } from './profiles.ts';
import { Revocation } from './revocation.ts';
import { Signer } from './signer.ts';

export interface InitOptions extends HierarchyOptions {
  crlValidityHours: number;
  /** Names of the CA's admin TLS listener. */
  serverDns: string[];
  serverIp: string[];
  operator: { org: string; name: string };
  actor: string;
}

/**
 * The certificate authority: a root and an issuing CA whose keys are encrypted at rest, an
 * inventory of issued certificates, CRLs, an OCSP responder and an audit log, all in one LMDB
 * environment. The command-line tool and the HTTP service both act through this class, and may
 * run at the same time on the same data directory. It checks requests, writes every refusal to
 * the audit log, and hands the work to issuance.ts, revocation.ts and the inventory.
 */
export class CertificateAuthority {
  readonly inventory: Inventory;
  readonly audit: AuditLog;
  readonly ocsp: OcspResponder;
  private readonly issuer: Issuer;
  private readonly revocation: Revocation;
  /** Set at init and never changed, so read once. */
  private readonly chain: string;

  private constructor(
    readonly store: Store,
    readonly dataDir: string,
    keys: CaKeys,
    meta: CaMeta,
  ) {
    this.inventory = new Inventory(store);
    this.audit = new AuditLog(store);
    const state = { store, inventory: this.inventory, audit: this.audit };
    const issuingCert = new x509.X509Certificate(bytes(meta.issuingCert));
    // The issuing key signs certificates, CRLs and OCSP responses; the root key only the root's CRL.
    const issuingSigner = new Signer(keys.issuing, meta.keyAlgorithm);
    this.chain = toPem(meta.issuingCert, 'CERTIFICATE') + toPem(meta.rootCert, 'CERTIFICATE');
    const leafBuilder = new LeafCertificateBuilder(issuingCert, issuingSigner, meta.publicUrl);
    this.issuer = new Issuer(state, issuingCert, leafBuilder, this.chain);
    this.revocation = new Revocation(
      state,
      { cert: issuingCert, signer: issuingSigner },
      { cert: new x509.X509Certificate(bytes(meta.rootCert)), signer: new Signer(keys.root, meta.keyAlgorithm) },
    );
    this.ocsp = new OcspResponder(
      {
        issuerName: Buffer.from(issuingCert.subjectName.toArrayBuffer()),
        issuerKey: subjectPublicKeyBits(Buffer.from(issuingCert.publicKey.rawData)),
        signer: issuingSigner,
      },
      (serial) => serialStatusOf(this.inventory.get(serial)),
    );
  }

  /** Creates the root and issuing CA, the admin listener's certificate and the first operator's. */
  static async init(
    options: InitOptions,
  ): Promise<{ ca: CertificateAuthority; operator: IssuedCertificate & { keyPem: string } }> {
    const hierarchy = await createHierarchy(options);
    const store = Store.open({ path: caPaths(options.dataDir).store });
    const meta: CaMeta = {
      keyAlgorithm: options.keyAlgorithm,
      publicUrl: options.publicUrl,
      rootCert: hierarchy.rootCert,
      issuingCert: hierarchy.issuingCert,
      serverCert: Buffer.alloc(0),
      crlValidityHours: options.crlValidityHours,
      crlNumber: 0,
      crlNextUpdate: 0,
      rootCrlNextUpdate: 0,
      createdAt: Date.now(),
    };
    const ca = new CertificateAuthority(store, options.dataDir, hierarchy.keys, meta);
    await store.transaction(() => {
      ca.inventory.putMeta(ca.revocation.publishCrls(meta, Date.now()));
      ca.audit.append({
        actor: options.actor,
        action: 'init',
        outcome: 'ok',
        detail: `${options.keyAlgorithm} ${options.caName}`,
      });
    });

    const server = await ca.issuer.issue(
      checkSpki(spkiOf(hierarchy.server.publicKey)),
      validateOnboarding(PROFILES['ca-server'], {
        org: options.caName.replace(/[^A-Za-z0-9._:-]+/g, '-'),
        name: `${options.caName} CA admin`,
        dns: options.serverDns,
        ip: options.serverIp,
      }),
      options.actor,
    );
    await store.transaction(() => ca.inventory.putMeta({ ...ca.meta(), serverCert: server.record.der }));

    const operatorKey = generateKeyPair('P-256');
    const operator = await ca.issuer.issue(
      checkSpki(spkiOf(operatorKey.publicKey)),
      validateOnboarding(PROFILES.operator, options.operator),
      options.actor,
    );
    const keyPem = operatorKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    return { ca, operator: { ...operator, keyPem } };
  }

  /** Opens an initialised CA; fails with a clear error on a missing CA or a wrong passphrase. */
  static async open(dataDir: string, passphrase: string): Promise<CertificateAuthority> {
    const p = caPaths(dataDir);
    if (!existsSync(p.issuingKey) || !existsSync(p.store)) {
      throw new NotInitialised(`No CA in ${dataDir}: run "packtrust-ca init" first`);
    }
    const store = Store.open({ path: p.store });
    const meta = new Inventory(store).getMeta();
    if (!meta) {
      await store.close();
      throw new NotInitialised(`The CA in ${dataDir} was not fully initialised; remove it and run init again`);
    }
    return new CertificateAuthority(store, dataDir, readCaKeys(dataDir, passphrase), meta);
  }

  meta(): CaMeta {
    return this.inventory.requireMeta();
  }

  /** The TLS key and certificate of the admin listener (key decrypted with the CA passphrase). */
  serverCredentials(passphrase: string): { key: KeyObject; certPem: string } {
    const key = readServerKey(this.dataDir, passphrase);
    return { key, certPem: toPem(this.meta().serverCert, 'CERTIFICATE') + this.chainPem() };
  }

  rootCertificate(): Buffer {
    return this.meta().rootCert;
  }

  issuingCertificate(): Buffer {
    return this.meta().issuingCert;
  }

  chainPem(): string {
    return this.chain;
  }

  /** Issues a certificate from a CSR and onboarding data. Refusals are audited too. */
  async issue(request: IssueRequest, actor: string): Promise<IssuedCertificate> {
    return this.audited('issue', actor, undefined, async () => {
      const data = validateOnboarding(profileByName(request.profile), request);
      const key = checkCsr(request.csr);
      checkProfileKey(data.profile, key);
      return this.issuer.issue(key, data, actor);
    });
  }

  /**
   * Issues a successor with the same onboarding data: for a new key when a CSR is given, else for
   * the same key. The predecessor stays valid until it expires or is revoked.
   */
  async renew(serial: string, csr: Buffer | undefined, actor: string): Promise<IssuedCertificate> {
    return this.audited('renew', actor, serial, async () => {
      const old = this.inventory.require(serial);
      const { key, data } = successorOf(old, csr);
      return this.issuer.issue(key, data, actor, old.serial);
    });
  }

  /** Revokes at once: the inventory, a new CRL and the audit entry commit in one transaction. */
  async revoke(serial: string, reason: RevocationReason, actor: string): Promise<CertRecord> {
    return this.audited('revoke', actor, serial, () => this.revocation.revoke(serial, reason, actor));
  }

  show(serial: string): CertRecord {
    return this.inventory.require(serial);
  }

  list(filter: { org?: string | undefined; status?: CertStatus | undefined } = {}): CertRecord[] {
    return this.inventory.list(filter);
  }

  /** The current CRL of the issuing CA (DER). */
  currentCrl(): Buffer {
    return this.inventory.crl('issuing');
  }

  rootCrl(): Buffer {
    return this.inventory.crl('root');
  }

  /**
   * Reissues the CRLs when they are within `marginMs` of their nextUpdate (or `force`).
   * Returns whether a new CRL was produced.
   */
  refreshCrls(options: { marginMs: number; force?: boolean; actor: string }): Promise<boolean> {
    return this.revocation.refreshCrls(options);
  }

  /** Records refusals (or a count of them) in one transaction: also those refused before they reached the CA. */
  async recordRefusals(records: Omit<AuditRecord, 'time'>[]): Promise<void> {
    await this.store.transaction(() => {
      for (const r of records) this.audit.append(r);
    });
  }

  async recordExport(serial: string, actor: string): Promise<void> {
    await this.store.transaction(() => this.audit.append({ actor, action: 'export-p12', serial, outcome: 'ok' }));
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  /** Runs an operation; a refusal is written to the audit log before it is rethrown. */
  private async audited<T>(
    action: AuditAction,
    actor: string,
    serial: string | undefined,
    op: () => Promise<T>,
  ): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof PacktrustError && err.status < 500) {
        await this.recordRefusals([{ actor, action, serial, outcome: 'refused', code: err.code, detail: err.message }]);
      }
      throw err;
    }
  }
}

const spkiOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });
