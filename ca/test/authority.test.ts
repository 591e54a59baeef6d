import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPem, x509 } from '../../common/src/pki.ts';
import { PACKTRUST_ARC } from '../../common/src/vocabulary.ts';
import { CertificateAuthority } from '../src/authority.ts';
import {
  AlreadyRevoked,
  CsrMalformed,
  CsrSignatureInvalid,
  NotRenewable,
  OnboardingInvalid,
  PassphraseInvalid,
  ProfileUnknown,
  SerialUnknown,
} from '../src/errors.ts';
import { createTestCa, openssl, opensslCsr, P256, type TestCa } from './fixtures.ts';

let t: TestCa;
beforeAll(async () => {
  t = await createTestCa();
});
afterAll(() => t.cleanup());

function opensslVerify(certPem: string, extra: string[] = []) {
  const chain = t.file('chain.pem', t.ca.chainPem());
  const cert = t.file(`cert-${Math.random()}.pem`, certPem);
  return openssl(['verify', '-CAfile', chain, ...extra, cert]);
}

function writeCrlPem(): string {
  return t.file('crl.pem', toPem(t.ca.currentCrl(), 'X509 CRL'));
}

describe('issuance', () => {
  it('issues a manufacturer certificate that openssl verify accepts against the chain', async () => {
    const { csr } = opensslCsr(t.dir, 'acme', P256);
    const issued = await t.ca.issue({ csr, profile: 'manufacturer', org: 'ACME-1', name: 'Acme Pharma' }, 'test');
    const r = opensslVerify(issued.certificatePem, ['-purpose', 'sslclient']);
    expect(r.stdout + r.stderr).toContain(': OK');
    expect(r.status).toBe(0);
  });

  it('takes the subject from the onboarding data, not from the CSR', async () => {
    const { csr } = opensslCsr(t.dir, 'claims', P256, '/CN=Someone Else/O=Other Org/C=FR');
    const issued = await t.ca.issue({ csr, profile: 'manufacturer', org: 'ACME-2', name: 'Acme Two' }, 'test');
    const cert = new x509.X509Certificate(issued.certificatePem);
    expect(cert.subject).toContain('CN=Acme Two');
    expect(cert.subjectName.getField('2.5.4.97')).toEqual(['ACME-2']);
    expect(cert.subject).not.toContain('Someone Else');
    expect(cert.subject).not.toContain('Other Org');
  });

  it('writes the profile rules: key usage, EKU, policy, CRL distribution point and OCSP AIA', async () => {
    const { csr } = opensslCsr(t.dir, 'node', P256);
    const issued = await t.ca.issue(
      { csr, profile: 'verifier-node', org: 'NMVO-DE', market: 'DE', dns: ['node1.de.example'], ip: ['127.0.0.1'] },
      'test',
    );
    const text = openssl(['x509', '-noout', '-text'], issued.certificatePem).stdout;
    expect(text).toContain('TLS Web Client Authentication, TLS Web Server Authentication');
    expect(text).toContain('Digital Signature');
    expect(text).toContain(`Policy: ${PACKTRUST_ARC}.1.2`);
    expect(text).toContain('URI:http://127.0.0.1:7080/crl');
    expect(text).toContain('OCSP - URI:http://127.0.0.1:7080/ocsp');
    expect(text).toContain('DNS:node1.de.example, IP Address:127.0.0.1');
    expect(text).toMatch(/C ?= ?DE/);
    expect(issued.record.market).toBe('DE');
  });

  it('refuses a verifier node without a market and a manufacturer with one, listing the problems', async () => {
    const { csr } = opensslCsr(t.dir, 'rules', P256);
    const before = t.ca.inventory.count();
    await expect(t.ca.issue({ csr, profile: 'verifier-node', org: 'NMVO-DE' }, 'test')).rejects.toThrow(
      OnboardingInvalid,
    );
    await expect(t.ca.issue({ csr, profile: 'manufacturer', org: 'X', market: 'DE' }, 'test')).rejects.toThrow(
      /takes no market/,
    );
    await expect(t.ca.issue({ csr, profile: 'manufacturer', org: 'bad org id!' }, 'test')).rejects.toThrow(
      /organisation id/,
    );
    expect(t.ca.inventory.count()).toBe(before);
  });

  it('issues a verification-org certificate for one market, with its own policy, and refuses one without a market', async () => {
    const { csr } = opensslCsr(t.dir, 'nmvo', P256);
    const before = t.ca.inventory.count();
    await expect(t.ca.issue({ csr, profile: 'verification-org', org: 'NMVO-DE' }, 'test')).rejects.toThrow(
      new OnboardingInvalid('profile verification-org needs --market', {
        problems: ['profile verification-org needs --market'],
      }),
    );
    expect(t.ca.inventory.count()).toBe(before);
    const issued = await t.ca.issue({ csr, profile: 'verification-org', org: 'NMVO-DE', market: 'DE' }, 'test');
    const text = openssl(['x509', '-noout', '-text'], issued.certificatePem).stdout;
    expect(text).toContain(`Policy: ${PACKTRUST_ARC}.1.6`);
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).not.toContain('TLS Web Server Authentication');
    expect(text).toMatch(/OU ?= ?verification-org/);
    expect(text).toMatch(/C ?= ?DE/);
    expect([issued.record.profile, issued.record.market]).toEqual(['verification-org', 'DE']);
    expect(opensslVerify(issued.certificatePem, ['-purpose', 'sslclient']).status).toBe(0);
  });

  it('refuses an unknown profile, a malformed CSR and a bad signature, leaving the inventory unchanged but audited', async () => {
    const { csr } = opensslCsr(t.dir, 'bad', P256);
    const before = t.ca.inventory.count();
    const auditBefore = t.ca.audit.verify();
    await expect(t.ca.issue({ csr, profile: 'wizard', org: 'ACME' }, 'test')).rejects.toThrow(ProfileUnknown);
    await expect(
      t.ca.issue({ csr: Buffer.from('garbage'), profile: 'manufacturer', org: 'ACME' }, 'test'),
    ).rejects.toThrow(CsrMalformed);
    const tampered = Buffer.from(
      csr
        .toString()
        .replace(/([A-Za-z0-9+/]{40})([A-Za-z])/, (_m, a: string, b: string) => a + (b === 'A' ? 'B' : 'A')),
    );
    await expect(t.ca.issue({ csr: tampered, profile: 'manufacturer', org: 'ACME' }, 'test')).rejects.toThrow(
      /CA_CSR|signature|PKCS#10/,
    );
    expect(t.ca.inventory.count()).toBe(before);
    const entries = [...t.ca.audit.entries(auditBefore.ok ? auditBefore.lastSeq + 1 : 1)].map((e) => e.body);
    expect(entries.map((e) => [e.action, e.outcome, e.code])).toEqual([
      ['issue', 'refused', 'CA_PROFILE_UNKNOWN'],
      ['issue', 'refused', 'CA_CSR_MALFORMED'],
      ['issue', 'refused', expect.stringMatching(/CA_CSR_(SIGNATURE_INVALID|MALFORMED)/)],
    ]);
    void CsrSignatureInvalid;
  });
});

describe('revocation', () => {
  it('puts a revoked certificate on a new CRL at once, which openssl -crl_check honours', async () => {
    const { csr } = opensslCsr(t.dir, 'revoke-me', P256);
    const issued = await t.ca.issue({ csr, profile: 'manufacturer', org: 'ACME-3' }, 'test');
    const good = opensslVerify(issued.certificatePem, ['-crl_check', '-CRLfile', writeCrlPem()]);
    expect(good.status).toBe(0);
    const numberBefore = t.ca.meta().crlNumber;

    await t.ca.revoke(issued.record.serial, 'keyCompromise', 'test');
    expect(t.ca.meta().crlNumber).toBe(numberBefore + 1);
    const crlText = openssl(['crl', '-noout', '-text', '-in', writeCrlPem()]).stdout;
    expect(crlText).toContain(issued.record.serial.toUpperCase());
    expect(crlText).toContain('Key Compromise');
    const bad = opensslVerify(issued.certificatePem, ['-crl_check', '-CRLfile', writeCrlPem()]);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('certificate revoked');
    expect(t.ca.show(issued.record.serial).revocationReason).toBe('keyCompromise');
  });

  it('refuses to revoke twice and to revoke an unknown serial, changing nothing', async () => {
    const { csr } = opensslCsr(t.dir, 'twice', P256);
    const issued = await t.ca.issue({ csr, profile: 'manufacturer', org: 'ACME-4' }, 'test');
    await t.ca.revoke(issued.record.serial, 'superseded', 'test');
    const crl = t.ca.currentCrl();
    await expect(t.ca.revoke(issued.record.serial, 'keyCompromise', 'test')).rejects.toThrow(AlreadyRevoked);
    await expect(t.ca.revoke('7fffffffffffffffffffffffffffffff', 'keyCompromise', 'test')).rejects.toThrow(
      SerialUnknown,
    );
    await expect(t.ca.revoke('not a serial', 'keyCompromise', 'test')).rejects.toThrow(SerialUnknown);
    expect(t.ca.currentCrl().equals(crl)).toBe(true);
    expect(t.ca.show(issued.record.serial).revocationReason).toBe('superseded');
  });
});

describe('renewal, listing and the CRL timer', () => {
  it('renews with the same onboarding data, for a new key or the same one', async () => {
    const { csr } = opensslCsr(t.dir, 'renew', P256);
    const first = await t.ca.issue({ csr, profile: 'manufacturer', org: 'ACME-5', name: 'Acme Five' }, 'test');
    const sameKey = await t.ca.renew(first.record.serial, undefined, 'test');
    expect(sameKey.record.renewedFrom).toBe(first.record.serial);
    expect(sameKey.record.org).toBe('ACME-5');
    const a = new x509.X509Certificate(first.certificatePem);
    const b = new x509.X509Certificate(sameKey.certificatePem);
    expect(Buffer.from(b.publicKey.rawData).equals(Buffer.from(a.publicKey.rawData))).toBe(true);
    const { csr: csr2 } = opensslCsr(t.dir, 'renew2', ['-newkey', 'ed25519']);
    const newKey = await t.ca.renew(first.record.serial, csr2, 'test');
    expect(newKey.record.keyType).toBe('Ed25519');
    expect(opensslVerify(newKey.certificatePem).status).toBe(0);
    await t.ca.revoke(first.record.serial, 'superseded', 'test');
    await expect(t.ca.renew(first.record.serial, undefined, 'test')).rejects.toThrow(NotRenewable);
  });

  it('lists by organisation and status', async () => {
    expect(t.ca.list({ org: 'ACME-5' }).map((r) => r.keyType)).toEqual(['P-256', 'P-256', 'Ed25519']);
    expect(t.ca.list({ org: 'ACME-5', status: 'revoked' })).toHaveLength(1);
    expect(t.ca.list({ status: 'valid' }).every((r) => r.revokedAt === undefined)).toBe(true);
  });

  it('reissues the CRL when it nears its nextUpdate, and not before', async () => {
    const n = t.ca.meta().crlNumber;
    expect(await t.ca.refreshCrls({ marginMs: 60_000, actor: 'test' })).toBe(false);
    expect(await t.ca.refreshCrls({ marginMs: 25 * 3_600_000, actor: 'test' })).toBe(true);
    expect(t.ca.meta().crlNumber).toBe(n + 1);
    expect(t.ca.meta().crlNextUpdate).toBeGreaterThan(Date.now() + 23 * 3_600_000);
  });

  it('keeps inventory and audit chain consistent under concurrent issuance', async () => {
    const { csr } = opensslCsr(t.dir, 'concurrent', P256);
    const before = t.ca.inventory.count();
    const issued = await Promise.all(
      Array.from({ length: 40 }, (_, i) => t.ca.issue({ csr, profile: 'manufacturer', org: `PAR-${i}` }, 'test')),
    );
    expect(new Set(issued.map((c) => c.record.serial)).size).toBe(40);
    expect(t.ca.inventory.count()).toBe(before + 40);
  });

  it('keeps the audit chain intact over all of this', () => {
    const result = t.ca.audit.verify();
    expect(result.ok).toBe(true);
  });
});

describe('CA keys', () => {
  it.each(['P-384', 'RSA-3072'] as const)(
    'initialises a %s CA whose certificates openssl verifies',
    async (keyAlgorithm) => {
      const other = await createTestCa({ keyAlgorithm });
      try {
        const { csr } = opensslCsr(other.dir, 'leaf', P256);
        const issued = await other.ca.issue({ csr, profile: 'operator', org: 'OPS' }, 'test');
        const chain = other.file('chain.pem', other.ca.chainPem());
        const cert = other.file('leaf.pem', issued.certificatePem);
        const crl = other.file('crl.pem', toPem(other.ca.currentCrl(), 'X509 CRL'));
        expect(openssl(['verify', '-CAfile', chain, '-crl_check', '-CRLfile', crl, cert]).status).toBe(0);
        const text = openssl(['x509', '-noout', '-text', '-in', chain]).stdout;
        expect(text).toContain(keyAlgorithm === 'RSA-3072' ? 'Public-Key: (3072 bit)' : 'NIST CURVE: P-384');
      } finally {
        await other.cleanup();
      }
    },
  );

  it('keeps CA keys encrypted at rest and refuses a wrong passphrase', async () => {
    const other = await createTestCa();
    try {
      const { readFileSync } = await import('node:fs');
      const pem = readFileSync(join(other.dir, 'ca', 'keys', 'issuing-ca.key.pem'), 'utf8');
      expect(pem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
      // Keys and the store (inventory, audit log) are the CA's owner's alone.
      const modes = (...path: string[]) => {
        const dir = join(other.dir, 'ca', ...path);
        const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
        return [mode(dir), ...readdirSync(dir).map((f) => `${f} ${mode(join(dir, f))}`)];
      };
      expect(modes('keys')).toEqual(['700', 'ca-server.key.pem 600', 'issuing-ca.key.pem 600', 'root-ca.key.pem 600']);
      expect(modes('store')).toEqual(['700', 'data.mdb 600', 'lock.mdb 600']);
      await other.ca.close();
      await expect(CertificateAuthority.open(join(other.dir, 'ca'), 'wrong passphrase!!')).rejects.toThrow(
        PassphraseInvalid,
      );
    } finally {
      writeFileSync(join(other.dir, 'noop'), '');
      other.ca = await CertificateAuthority.open(join(other.dir, 'ca'), 'test passphrase of the CA');
      await other.cleanup();
    }
  });
});
