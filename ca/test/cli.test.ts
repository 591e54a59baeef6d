import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainEntry } from '../../common/src/hash-chain.ts';
import { Store } from '../../common/src/store.ts';
import type { AuditRecord } from '../src/audit-log.ts';
import { openssl, opensslCsr, P256, run } from './fixtures.ts';

const BIN = fileURLToPath(new URL('../../bin/packtrust-ca.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'packtrust-cli-'));
const dataDir = join(dir, 'ca');
const passFile = join(dir, 'pass');

const ca = (...args: string[]) => run(BIN, ['--data-dir', dataDir, '--passphrase-file', passFile, ...args]);

beforeAll(async () => {
  writeFileSync(passFile, 'a long enough CA passphrase\n', { mode: 0o600 });
  const r = await ca(
    'init',
    '--operator-org',
    'NMVO-CLI',
    '--operator-name',
    'CLI Operator',
    '--public-url',
    'http://127.0.0.1:7080',
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('packtrust-ca', () => {
  it('init writes a trust bundle and an operator credential that verifies', () => {
    const chain = join(dataDir, 'chain.pem');
    const r = openssl(['verify', '-CAfile', chain, join(dataDir, 'operator', 'operator.pem')]);
    expect(r.status).toBe(0);
  });

  it('refuses a second init of the same directory', async () => {
    const r = await ca('init', '--operator-org', 'X');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('CA_ALREADY_INITIALISED');
  });

  it('issues, lists, shows, revokes and writes the CRL', async () => {
    const { csrPath } = opensslCsr(dir, 'acme', P256);
    const out = join(dir, 'acme.pem');
    const issued = await ca(
      'issue',
      '--csr',
      csrPath,
      '--profile',
      'manufacturer',
      '--org',
      'ACME',
      '--name',
      'Acme Pharma',
      '--out',
      out,
    );
    expect(issued.status).toBe(0);
    const serial = /certificate ([0-9a-f]+) for ACME/.exec(issued.stdout)![1]!;
    expect(openssl(['verify', '-CAfile', join(dataDir, 'chain.pem'), out]).status).toBe(0);

    const listed = await ca('list', '--org', 'ACME', '--json');
    expect(JSON.parse(listed.stdout)).toMatchObject([
      { serial, org: 'ACME', status: 'valid', profile: 'manufacturer' },
    ]);
    const shown = await ca('show', '--serial', serial.toUpperCase());
    expect(JSON.parse(shown.stdout)).toMatchObject({ serial, name: 'Acme Pharma' });

    const revoked = await ca('revoke', '--serial', serial, '--reason', 'keyCompromise');
    expect(revoked.status).toBe(0);
    const crlOut = join(dir, 'crl.pem');
    expect((await ca('crl', '--out', crlOut, '--pem')).status).toBe(0);
    const v = openssl(['verify', '-crl_check', '-CAfile', join(dataDir, 'chain.pem'), '-CRLfile', crlOut, out]);
    expect(v.status).not.toBe(0);
    expect(v.stdout + v.stderr).toContain('certificate revoked');
    expect(JSON.parse((await ca('list', '--status', 'revoked', '--json')).stdout)).toHaveLength(1);
  });

  it('exits non-zero with the error code for bad input', async () => {
    const { csrPath } = opensslCsr(dir, 'weak', ['-newkey', 'rsa:1024']);
    const weak = await ca(
      'issue',
      '--csr',
      csrPath,
      '--profile',
      'manufacturer',
      '--org',
      'ACME',
      '--out',
      join(dir, 'x.pem'),
    );
    expect(weak.status).toBe(1);
    expect(weak.stderr).toContain('error [CA_KEY_REJECTED]');
    const missing = await ca(
      'issue',
      '--csr',
      join(dir, 'nope.csr'),
      '--profile',
      'manufacturer',
      '--org',
      'ACME',
      '--out',
      join(dir, 'x.pem'),
    );
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('Cannot read the CSR file');
    const unknown = await ca('revoke', '--serial', 'abcdef', '--reason', 'keyCompromise');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('CA_SERIAL_UNKNOWN');
    const reason = await ca('revoke', '--serial', 'abcdef', '--reason', 'boredom');
    expect(reason.status).not.toBe(0);
    expect(reason.stderr).toContain('Unknown revocation reason');
    const profile = await ca(
      'issue',
      '--csr',
      csrPath,
      '--profile',
      'wizard',
      '--org',
      'A',
      '--out',
      join(dir, 'x.pem'),
    );
    expect(profile.status).not.toBe(0);
    expect(profile.stderr).toContain('Allowed choices are manufacturer');
    const noPass = await run(BIN, ['--data-dir', dataDir, 'revoke', '--serial', 'abcdef', '--reason', 'superseded']);
    expect(noPass.status).toBe(2);
    expect(noPass.stderr).toContain('CA_PASSPHRASE_INVALID');
  });

  it('lists, shows and checks the audit log without the passphrase, which only the CA keys need', async () => {
    const bare = (...args: string[]) => run(BIN, ['--data-dir', dataDir, ...args]);
    const listed = await bare('list', '--json');
    expect(listed.status).toBe(0);
    const [first] = JSON.parse(listed.stdout) as { serial: string }[];
    expect((await bare('show', '--serial', first!.serial)).status).toBe(0);
    expect((await bare('audit', 'list', '--limit', '1')).stdout).toMatch(/^1\t.*\tinit\t/);
    expect((await bare('audit', 'verify')).stdout).toContain('audit log intact');
    const missing = await run(BIN, ['--data-dir', join(dir, 'none'), 'list']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('CA_NOT_INITIALISED');
  });

  it('exports a PKCS#12 bundle of a staff-generated key that openssl reads back', async () => {
    const { csrPath, keyPath } = opensslCsr(dir, 'p12', P256);
    const out = join(dir, 'p12.pem');
    const issued = await ca('issue', '--csr', csrPath, '--profile', 'manufacturer', '--org', 'P12-ORG', '--out', out);
    const serial = /certificate ([0-9a-f]+)/.exec(issued.stdout)![1]!;
    const pw = join(dir, 'p12pass');
    writeFileSync(pw, 'bundle password 123\n');
    const p12 = join(dir, 'bundle.p12');
    const r = await ca('export-p12', '--serial', serial, '--key', keyPath, '--out', p12, '--password-file', pw);
    expect(r.stderr).toBe('');
    const read = openssl(['pkcs12', '-in', p12, '-passin', 'pass:bundle password 123', '-nodes']);
    expect(read.status).toBe(0);
    expect(read.stdout).toContain('BEGIN PRIVATE KEY');
    expect(read.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    expect(openssl(['pkcs12', '-in', p12, '-passin', 'pass:wrong', '-nodes']).status).not.toBe(0);

    const { keyPath: otherKey } = opensslCsr(dir, 'other', P256);
    const mismatch = await ca('export-p12', '--serial', serial, '--key', otherKey, '--out', p12, '--password-file', pw);
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toContain('does not belong to certificate');
  });

  it('audit verify finds an intact chain, then names the first tampered entry and changes nothing', async () => {
    const intact = await ca('audit', 'verify');
    expect(intact.status).toBe(0);
    expect(intact.stdout).toContain('audit log intact');

    const store = Store.open({ path: join(dataDir, 'store') });
    const log = store.db<ChainEntry<AuditRecord>, number>('audit-log');
    const entry = log.get(4)!;
    store.transactionSync(() => log.putSync(4, { ...entry, body: { ...entry.body, actor: 'someone-else' } }));
    const snapshot = [...log.getRange({})].map((e) => JSON.stringify(e.value));
    await store.close();

    const broken = await ca('audit', 'verify');
    expect(broken.status).toBe(3);
    expect(broken.stderr).toContain('BROKEN at entry 4');
    expect(broken.stderr).toContain('content does not match');

    const again = Store.open({ path: join(dataDir, 'store') });
    const after = [...again.db<ChainEntry<AuditRecord>, number>('audit-log').getRange({})].map((e) =>
      JSON.stringify(e.value),
    );
    await again.close();
    expect(after).toEqual(snapshot);
    expect(readFileSync(passFile, 'utf8')).toContain('passphrase');
  });
});
