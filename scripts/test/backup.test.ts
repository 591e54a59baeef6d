import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../ca/src/authority.ts';
import { createTestCa, opensslCsr, P256, PASSPHRASE, run } from '../../ca/test/fixtures.ts';

const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const BACKUP = fileURLToPath(new URL('../backup.ts', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'packtrust-backup-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run backup', () => {
  it('copies a CA that is in use into a store that opens with all its certificates', async () => {
    const t = await createTestCa();
    try {
      const { csr } = opensslCsr(t.dir, 'm', P256);
      const issued = await t.ca.issue({ csr, profile: 'manufacturer', org: 'BACKUP' }, 'test');
      const target = join(out, 'b1');
      const r = await run(TSX, [BACKUP, '--data-dir', t.dir, '--out', target]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(existsSync(join(target, 'ca', 'keys', 'issuing-ca.key.pem'))).toBe(true);
      // Keys and stores are the owner's alone in the copy too.
      const mode = (...path: string[]) => (statSync(join(target, ...path)).mode & 0o777).toString(8);
      expect([mode(), mode('ca', 'keys'), mode('ca', 'keys', 'issuing-ca.key.pem')]).toEqual(['700', '700', '600']);
      expect([mode('ca', 'store'), mode('ca', 'store', 'data.mdb')]).toEqual(['700', '600']);
      const restored = await CertificateAuthority.open(join(target, 'ca'), PASSPHRASE);
      try {
        expect(restored.show(issued.record.serial).org).toBe('BACKUP');
        expect(restored.audit.verify().ok).toBe(true);
      } finally {
        await restored.close();
      }
      expect((await run(TSX, [BACKUP, '--data-dir', t.dir, '--out', target])).status).toBe(1);
    } finally {
      await t.cleanup();
    }
  });
});
