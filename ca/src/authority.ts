import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PacktrustError } from '../../common/src/errors.ts';
import { bytes, toPem, x509 } from '../../common/src/pki.ts';
import { Store } from '../../common/src/store.ts';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import { type AuditAction, AuditLog, type AuditRecord } from './audit-log.ts';
import { keyIdOf, LeafCertificateBuilder } from './certificate.ts';
import { buildCrl, type RevocationReason } from './crl.ts';
import { type CheckedCsr, checkCsr, checkKey, subjectPublicKeyBits } from './csr.ts';
import { AlreadyInitialised, AlreadyRevoked, NotInitialised, NotRenewable, SerialUnknown } from './errors.ts';
import { type CaMeta, type CertRecord, type CertStatus, Inventory } from './inventory.ts';
import {
  decryptPrivateKey,
  encryptPrivateKey,
  generateKeyPair,
  type KeyAlgorithm,
  signingSuite,
  toWebCryptoKey,
} from './keys.ts';
import { OcspResponder, type SerialStatus } from './ocsp.ts';
import {
  type OnboardingData,
  PROFILES,
  type Profile,
  profileByName,
  subjectOf,
  validateOnboarding,
} from './profiles.ts';
import { Signer } from './signer.ts';

const DAY = 86_400_000;
const ROOT_VALIDITY_DAYS = 20 * 365;
const ISSUING_VALIDITY_DAYS = 10 * 365;
const ROOT_CRL_VALIDITY_DAYS = 90;
/** Backdating absorbs small clock differences between the CA and relying parties. */
const BACKDATE_MS = 60_000;

export interface InitOptions {
  dataDir: string;
  passphrase: string;
  keyAlgorithm: KeyAlgorithm;
  /** Base URL of the public listener, written into CRL distribution points and AIA. */
  publicUrl: string;
  caName: string;
  crlValidityHours: number;
  /** Names of the CA's admin TLS listener. */
  serverDns: string[];
  serverIp: string[];
  operator: { org: string; name: string };
  actor: string;
}

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

interface Keys {
  issuing: KeyObject;
  root: KeyObject;
}

const paths = (dataDir: string) => ({
  store: join(dataDir, 'store'),
  keys: join(dataDir, 'keys'),
  rootKey: join(dataDir, 'keys', 'root-ca.key.pem'),
  issuingKey: join(dataDir, 'keys', 'issuing-ca.key.pem'),
  serverKey: join(dataDir, 'keys', 'ca-server.key.pem'),
});

/**
 * The certificate authority: a root and an issuing CA whose keys are encrypted at rest, an
 * inventory of issued certificates, CRLs, an OCSP responder and an audit log, all in one LMDB
 * environment. The command-line tool and the HTTP service both act through this class, and may
 * run at the same time on the same data directory.
 */
export class CertificateAuthority {
  readonly inventory: Inventory;
  readonly audit: AuditLog;
  readonly ocsp: OcspResponder;
  private readonly issuingCert: x509.X509Certificate;
  private readonly issuingKeyId: Buffer;
  private readonly issuingSigner: Signer;
  private readonly rootSigner: Signer;
  private readonly leafBuilder: LeafCertificateBuilder;
  /** Set at init and never changed, so read once. */
  private readonly chain: string;

  private constructor(
    readonly store: Store,
    readonly dataDir: string,
    private readonly keys: Keys,
    meta: CaMeta,
  ) {
    this.inventory = new Inventory(store);
    this.audit = new AuditLog(store);
    this.issuingCert = new x509.X509Certificate(bytes(meta.issuingCert));
    this.issuingKeyId = Buffer.from(this.issuingCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, 'hex');
    // The issuing key signs certificates, CRLs and OCSP responses.
    this.issuingSigner = new Signer(keys.issuing, meta.keyAlgorithm);
    this.rootSigner = new Signer(keys.root, meta.keyAlgorithm);
    this.leafBuilder = new LeafCertificateBuilder(this.issuingCert, this.issuingSigner, meta.publicUrl);
    this.chain = toPem(meta.issuingCert, 'CERTIFICATE') + toPem(meta.rootCert, 'CERTIFICATE');
    this.ocsp = new OcspResponder(
      {
        issuerName: Buffer.from(this.issuingCert.subjectName.toArrayBuffer()),
        issuerKey: subjectPublicKeyBits(Buffer.from(this.issuingCert.publicKey.rawData)),
        signer: this.issuingSigner,
      },
      (serial) => this.serialStatus(serial),
    );
  }

  /** Creates the root and issuing CA, the admin listener's certificate and the first operator's. */
  static async init(
    options: InitOptions,
  ): Promise<{ ca: CertificateAuthority; operator: IssuedCertificate & { keyPem: string } }> {
    const p = paths(options.dataDir);
    if (existsSync(p.issuingKey)) throw new AlreadyInitialised(`A CA already exists in ${options.dataDir}`);
    const suite = signingSuite(options.keyAlgorithm);
    const now = Date.now();
    const root = generateKeyPair(options.keyAlgorithm);
    const issuing = generateKeyPair(options.keyAlgorithm);
    const rootCrypto = await toWebCryptoKey(root.privateKey, options.keyAlgorithm);
    const rootPublic = new x509.PublicKey(root.publicKey.export({ type: 'spki', format: 'der' }));
    const issuingPublic = new x509.PublicKey(issuing.publicKey.export({ type: 'spki', format: 'der' }));
    const rootSki = await x509.SubjectKeyIdentifierExtension.create(rootPublic);
    const rootName = new x509.Name([{ CN: [`${options.caName} Root CA`] }, { O: [options.caName] }]);
    const rootCert = await x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject: rootName,
      issuer: rootName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + ROOT_VALIDITY_DAYS * DAY),
      publicKey: rootPublic,
      signingKey: rootCrypto,
      signingAlgorithm: suite.webcrypto,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        rootSki,
      ],
    });
    const issuingCert = await x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject: new x509.Name([{ CN: [`${options.caName} Issuing CA 1`] }, { O: [options.caName] }]),
      issuer: rootCert.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + ISSUING_VALIDITY_DAYS * DAY),
      publicKey: issuingPublic,
      signingKey: rootCrypto,
      signingAlgorithm: suite.webcrypto,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(issuingPublic),
        new x509.AuthorityKeyIdentifierExtension(rootSki.keyId),
        new x509.CRLDistributionPointsExtension([`${options.publicUrl}/crl/root`]),
        new x509.AuthorityInfoAccessExtension({ caIssuers: `${options.publicUrl}/ca/root.der` }),
      ],
    });

    mkdirSync(p.keys, { recursive: true, mode: 0o700 });
    writeSecret(p.rootKey, encryptPrivateKey(root.privateKey, options.passphrase));
    writeSecret(p.issuingKey, encryptPrivateKey(issuing.privateKey, options.passphrase));
    const serverKey = generateKeyPair('P-256');
    writeSecret(p.serverKey, encryptPrivateKey(serverKey.privateKey, options.passphrase));

    const store = Store.open({ path: p.store });
    const meta: CaMeta = {
      keyAlgorithm: options.keyAlgorithm,
      publicUrl: options.publicUrl,
      rootCert: Buffer.from(rootCert.rawData),
      issuingCert: Buffer.from(issuingCert.rawData),
      serverCert: Buffer.alloc(0),
      crlValidityHours: options.crlValidityHours,
      crlNumber: 0,
      crlNextUpdate: 0,
      rootCrlNextUpdate: 0,
      createdAt: now,
    };
    const keys: Keys = {
      issuing: issuing.privateKey,
      root: root.privateKey,
    };
    const ca = new CertificateAuthority(store, options.dataDir, keys, meta);
    await store.transaction(() => {
      ca.inventory.putMeta(ca.publishFreshCrls(meta, Date.now()));
      ca.audit.append({
        actor: options.actor,
        action: 'init',
        outcome: 'ok',
        detail: `${options.keyAlgorithm} ${options.caName}`,
      });
    });

    const server = await ca.issueFor(
      {
        spki: serverKey.publicKey.export({ type: 'spki', format: 'der' }),
        keyType: 'P-256',
        publicKey: serverKey.publicKey,
      },
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
    const operator = await ca.issueFor(
      {
        spki: operatorKey.publicKey.export({ type: 'spki', format: 'der' }),
        keyType: 'P-256',
        publicKey: operatorKey.publicKey,
      },
      validateOnboarding(PROFILES.operator, options.operator),
      options.actor,
    );
    const keyPem = operatorKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    return { ca, operator: { ...operator, keyPem } };
  }

  /** Opens an initialised CA; fails with a clear error on a missing CA or a wrong passphrase. */
  static async open(dataDir: string, passphrase: string): Promise<CertificateAuthority> {
    const p = paths(dataDir);
    if (!existsSync(p.issuingKey) || !existsSync(p.store)) {
      throw new NotInitialised(`No CA in ${dataDir}: run "packtrust-ca init" first`);
    }
    const store = Store.open({ path: p.store });
    const meta = new Inventory(store).getMeta();
    if (!meta) {
      await store.close();
      throw new NotInitialised(`The CA in ${dataDir} was not fully initialised; remove it and run init again`);
    }
    const issuing = decryptPrivateKey(readFileSync(p.issuingKey), passphrase, 'issuing CA');
    const keys: Keys = {
      issuing,
      root: decryptPrivateKey(readFileSync(p.rootKey), passphrase, 'root CA'),
    };
    return new CertificateAuthority(store, dataDir, keys, meta);
  }

  meta(): CaMeta {
    const meta = this.inventory.getMeta();
    if (!meta) throw new NotInitialised('CA metadata is missing');
    return meta;
  }

  /** The TLS key and certificate of the admin listener (key decrypted with the CA passphrase). */
  serverCredentials(passphrase: string): { key: KeyObject; certPem: string } {
    const key = decryptPrivateKey(readFileSync(paths(this.dataDir).serverKey), passphrase, 'CA admin TLS');
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
      const profile = profileByName(request.profile);
      const data = validateOnboarding(profile, request);
      return this.issueFor(checkCsr(request.csr), data, actor);
    });
  }

  /**
   * Issues a successor with the same onboarding data: for a new key when a CSR is given, else for
   * the same key. The predecessor stays valid until it expires or is revoked.
   */
  async renew(serial: string, csr: Buffer | undefined, actor: string): Promise<IssuedCertificate> {
    return this.audited('renew', actor, serial, async () => {
      const old = this.requireRecord(serial);
      if (old.revokedAt !== undefined) throw new NotRenewable(`Certificate ${old.serial} is revoked; issue a new one`);
      if (old.profile === 'ca-server') throw new NotRenewable('The admin listener certificate is renewed by init');
      const key = csr ? checkCsr(csr) : checkCsrFromCertificate(old.der);
      const data: OnboardingData = {
        profile: old.profile,
        org: old.org,
        name: old.name,
        market: old.market,
        dns: old.dns,
        ip: old.ip,
      };
      return this.issueFor(key, data, actor, old.serial);
    });
  }

  /** Revokes at once: the inventory, a new CRL and the audit entry commit in one transaction. */
  async revoke(serial: string, reason: RevocationReason, actor: string): Promise<CertRecord> {
    return this.audited('revoke', actor, serial, async () => {
      let updated: CertRecord | undefined;
      await this.store.transaction(() => {
        const record = this.requireRecord(serial);
        if (record.revokedAt !== undefined) {
          throw new AlreadyRevoked(
            `Certificate ${record.serial} was revoked on ${new Date(record.revokedAt).toISOString()}`,
          );
        }
        const now = Date.now();
        updated = this.inventory.markRevoked(record, reason, now, actor);
        this.inventory.putMeta(this.publishFreshCrls(this.meta(), now));
        this.audit.append({ actor, action: 'revoke', serial: record.serial, outcome: 'ok', detail: reason });
      });
      return updated!;
    });
  }

  show(serial: string): CertRecord {
    return this.requireRecord(serial);
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
  async refreshCrls(options: { marginMs: number; force?: boolean; actor: string }): Promise<boolean> {
    let produced = false;
    await this.store.transaction(() => {
      const meta = this.meta();
      const now = Date.now();
      const due =
        options.force ||
        meta.crlNextUpdate - now <= options.marginMs ||
        meta.rootCrlNextUpdate - now <= options.marginMs;
      if (!due) return;
      const fresh = this.publishFreshCrls(meta, now);
      this.inventory.putMeta(fresh);
      this.audit.append({
        actor: options.actor,
        action: 'crl',
        outcome: 'ok',
        detail: `CRL number ${fresh.crlNumber}`,
      });
      produced = true;
    });
    return produced;
  }

  /** Records an operation refused before it reached the CA (for example an unauthorised admin call). */
  async recordRefusal(action: AuditAction, actor: string, error: PacktrustError, serial?: string): Promise<void> {
    await this.recordRefusals([{ actor, action, serial, outcome: 'refused', code: error.code, detail: error.message }]);
  }

  /** Records refusals (or a count of them) in one transaction. */
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

  private serialStatus(serial: string): SerialStatus {
    const record = this.inventory.get(serial);
    if (!record) return { status: 'unknown' };
    if (record.revokedAt !== undefined) {
      return { status: 'revoked', revokedAt: record.revokedAt, reason: record.revocationReason ?? 'unspecified' };
    }
    return { status: 'good' };
  }

  private requireRecord(serial: string): CertRecord {
    const normalised = normaliseSerial(serial);
    const record = normalised ? this.inventory.get(normalised) : undefined;
    if (!record) throw new SerialUnknown(`No certificate with serial number ${serial}`);
    return record;
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
      if (err instanceof PacktrustError && err.status < 500) await this.recordRefusal(action, actor, err, serial);
      throw err;
    }
  }

  private async issueFor(
    key: CheckedCsr,
    data: OnboardingData,
    actor: string,
    renewedFrom?: string,
  ): Promise<IssuedCertificate> {
    const profile: Profile = PROFILES[data.profile];
    const now = Date.now();
    const serial = newSerial();
    const notAfter = Math.min(now + profile.validityDays * DAY, this.issuingCert.notAfter.getTime());
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
      profile: data.profile,
      org: data.org,
      name: data.name,
      market: data.market,
      dns: data.dns,
      ip: data.ip,
      keyType: key.keyType,
      notBefore: now - BACKDATE_MS,
      notAfter,
      issuedAt: now,
      issuedBy: actor,
      renewedFrom,
      fingerprint: createHash('sha256').update(der).digest('hex'),
      der,
    };
    await this.store.transaction(() => {
      this.inventory.add(record);
      this.audit.append({
        actor,
        action: renewedFrom ? 'renew' : 'issue',
        serial,
        outcome: 'ok',
        detail: `${data.profile} for ${data.org}${renewedFrom ? ` (renews ${renewedFrom})` : ''}`,
      });
    });
    return { record, certificatePem: toPem(der, 'CERTIFICATE'), chainPem: this.chainPem() };
  }

  /**
   * Writes a new issuing-CA CRL (and root CRL when due), numbered after the last one, and returns
   * the meta record that describes them. Inside a write transaction.
   */
  private publishFreshCrls(meta: CaMeta, now: number): CaMeta {
    const crlNumber = meta.crlNumber + 1;
    const nextUpdate = now + meta.crlValidityHours * 3_600_000;
    const crl = buildCrl({
      issuerName: Buffer.from(this.issuingCert.subjectName.toArrayBuffer()),
      authorityKeyId: this.issuingKeyId,
      crlNumber,
      thisUpdate: new Date(now - BACKDATE_MS),
      nextUpdate: new Date(nextUpdate),
      entries: this.inventory.revokedForCrl(now),
      signer: this.issuingSigner,
    });
    this.inventory.putCrl('issuing', crl);
    const fresh: CaMeta = { ...meta, crlNumber, crlNextUpdate: nextUpdate };
    if (meta.rootCrlNextUpdate - now < (ROOT_CRL_VALIDITY_DAYS / 3) * DAY) {
      const rootCert = new x509.X509Certificate(bytes(meta.rootCert));
      fresh.rootCrlNextUpdate = now + ROOT_CRL_VALIDITY_DAYS * DAY;
      const rootCrl = buildCrl({
        issuerName: Buffer.from(rootCert.subjectName.toArrayBuffer()),
        authorityKeyId: Buffer.from(rootCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, 'hex'),
        crlNumber,
        thisUpdate: new Date(now - BACKDATE_MS),
        nextUpdate: new Date(fresh.rootCrlNextUpdate),
        // The root signs only the issuing CA, which this tool never revokes: a new CA means a new init.
        entries: [],
        signer: this.rootSigner,
      });
      this.inventory.putCrl('root', rootCrl);
    }
    return fresh;
  }
}

/**
 * A positive 128-bit serial (RFC 5280 §4.1.2.2 allows 20 octets; CA/B asks for 64+ random bits),
 * whose first octet lies in 0x40..0x7f: no DER sign octet, and already in normalised form.
 */
function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function checkCsrFromCertificate(der: Buffer): CheckedCsr {
  const spki = Buffer.from(new x509.X509Certificate(bytes(der)).publicKey.rawData);
  return { ...checkKey(spki), spki };
}

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}
