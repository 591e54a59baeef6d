import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../ca/test/fixtures.ts';
import { EvidenceNotary } from '../src/evidence-checkpoints.ts';
import { type Credential, productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

const UPLOAD = fileURLToPath(new URL('../../bin/packtrust-upload.js', import.meta.url));
const GATEWAY = fileURLToPath(new URL('../../bin/packtrust-gateway.js', import.meta.url));
const VERIFY_RECEIPT = fileURLToPath(new URL('../../scripts/verify-receipt.py', import.meta.url));
const TOKEN = fileURLToPath(new URL('../../bin/packtrust-token.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'packtrust-upload-cli-'));
let hub: TestHub;
let maker: Credential;
let files: { cert: string; key: string; ca: string; receipts: string };

beforeAll(async () => {
  hub = await startTestHub();
  maker = await hub.credential('manufacturer', 'ACME');
  await hub.registerPrefix('ACME', '9506000');
  files = {
    cert: join(work, 'acme.pem'),
    key: maker.keyPath,
    ca: join(work, 'chain.pem'),
    receipts: join(work, 'receipts'),
  };
  writeFileSync(files.cert, maker.certPem);
  writeFileSync(files.ca, hub.t.ca.chainPem());
}, 60_000);
afterAll(async () => {
  await hub?.close();
  rmSync(work, { recursive: true, force: true });
});

const runWithEnv = (command: string, args: string[], env: Record<string, string>) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
    execFile(command, args, { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    ),
  );

const upload = (...args: string[]) =>
  run(UPLOAD, [
    '--hub',
    hub.hubUrl,
    '--cert',
    files.cert,
    '--key',
    files.key,
    '--ca',
    files.ca,
    '--receipts',
    files.receipts,
    '--evidence-key',
    hub.notary.verifierKey,
    ...args,
  ]);

describe('packtrust-upload and packtrust-gateway evidence', () => {
  it('uploads a product and a batch, keeping verified receipts', async () => {
    const productFile = join(work, 'product.json');
    writeFileSync(productFile, JSON.stringify(productJson('09506000134352', ['DE'])));
    const p = await upload('product', '--file', productFile);
    expect(p.stderr).toContain('receipt verified and kept');
    expect(p.status).toBe(0);
    const serialsFile = join(work, 'serials.txt');
    writeFileSync(serialsFile, randomSerials(5000).join('\n'));
    const b = await upload(
      'packs',
      '--product',
      '09506000134352',
      '--batch',
      'LOT/42',
      '--expiry',
      '290100',
      '--file',
      serialsFile,
    );
    expect(b.status).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({
      packsAdded: 5000,
      batch: { batch: 'LOT/42', expiryDate: '2029-01-31' },
    });
    const receipts = readdirSync(files.receipts);
    expect(receipts).toHaveLength(2);
    const receipt = JSON.parse(readFileSync(join(files.receipts, receipts[1]!), 'utf8'));
    expect(receipt).toMatchObject({ verified: true, response: { status: 201 } });
  });

  it("refuses a receipt whose evidence does not verify with the operator's published key", async () => {
    // Not under ACME's prefix: refused (403), and a refusal is evidence with a receipt too.
    const productFile = join(work, 'product-2.json');
    writeFileSync(productFile, JSON.stringify(productJson('09506001000014', ['DE'])));
    const otherKey = new EvidenceNotary(hub.notary.origin, generateKeyPairSync('ed25519').privateKey).verifierKey;
    const r = await upload('--evidence-key', otherKey, 'product', '--file', productFile);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: The note has no signature of 127\.0\.0\.1\/packtrust-evidence/);
    expect(readdirSync(files.receipts)).toHaveLength(2);
  });

  it('checks serials before they are printed, storing nothing, and exits 1 when the hub would refuse them', async () => {
    const receipts = readdirSync(files.receipts).length;
    const packs = hub.store.packCountOf('09506000134352');
    const weakFile = join(work, 'weak.txt');
    const start = 400_000_000_000;
    const weak = Array.from({ length: 1200 }, (_, i) => String(start + i * 10_001));
    writeFileSync(weakFile, weak.sort(() => Math.random() - 0.5).join('\n'));
    const r = await upload('check-serials', '--product', '09506000134352', '--file', weakFile);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      productCode: '09506000134352',
      uploadWouldBeRefused: true,
      randomisation: { packs: 1200, verdict: 'reject' },
    });
    // Judged, as an upload would be, with the product's registered serials.
    expect(r.stderr).toContain(
      `1200 serials (judged with the product's ${packs} registered serials): reject; nothing was stored`,
    );
    expect(r.stderr).toContain(
      'REJECT ARITHMETIC_PROGRESSION: sorted, the serials follow a fixed increment of 10001, whatever the order they were uploaded in\n  The serials go up by the same amount each time',
    );
    expect(r.stderr).toContain('the hub would refuse an upload of these serials (HUB_RANDOMISATION_REJECTED)');

    const goodFile = join(work, 'good.txt');
    writeFileSync(goodFile, randomSerials(1200).join('\n'));
    const good = await upload('check-serials', '--product', '09506000134352', '--file', goodFile);
    expect(good.status).toBe(0);
    expect(good.stderr).toBe(
      `1200 serials (judged with the product's ${packs} registered serials): pass; nothing was stored\n`,
    );
    expect(readdirSync(files.receipts)).toHaveLength(receipts);
    expect(hub.store.packCountOf('09506000134352')).toBe(packs);
  });

  it('exits non-zero with the problem when the hub refuses', async () => {
    const serialsFile = join(work, 'dup.txt');
    writeFileSync(serialsFile, 'SAME\nSAME\n');
    const r = await upload(
      'packs',
      '--product',
      '09506000134352',
      '--batch',
      'LOT/43',
      '--expiry',
      '290100',
      '--file',
      serialsFile,
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('HUB_MASTER_DATA_INVALID');
  });

  it('re-verifies the evidence offline and exports a record for other tools', async () => {
    const dataDir = join(hub.dir);
    const crl = join(work, 'issuing.crl');
    writeFileSync(crl, hub.t.ca.currentCrl());
    const verify = await run(GATEWAY, [
      ...['--data-dir', dataDir, 'evidence', 'verify', '--ca-chain', files.ca, '--crl', crl],
      ...['--log-key', hub.notary.verifierKey, '--receipts', files.receipts],
    ]);
    expect(verify).toMatchObject({ status: 0, stderr: '' });
    // Three records: the third (a refusal) has a receipt the client refused to keep.
    expect(verify.stdout).toBe(
      'evidence intact: 3 records, 3 under a signed checkpoint; 1 checkpoints and 2 receipts checked\n',
    );
    const out = join(work, 'export');
    const exp = await run(GATEWAY, ['--data-dir', dataDir, 'evidence', 'export', '--seq', '2', '--out', out]);
    expect(exp.status).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      'README.txt',
      'body.bin',
      'client-chain.pem',
      'leaf.bin',
      'record.json',
      'request.http',
    ]);
    // The manufacturer's receipt of that record, checked by an independent verifier (python3 and
    // openssl, no packtrust code) against the exported record as the log hashes it.
    const receipt = readdirSync(files.receipts).find((f) => f.startsWith('receipt-2-'))!;
    const verifyReceipt = (leaf: string) =>
      run('python3', [
        VERIFY_RECEIPT,
        join(files.receipts, receipt),
        hub.notary.verifierKey,
        '--leaf',
        join(out, leaf),
      ]);
    const independent = await verifyReceipt('leaf.bin');
    expect(independent).toMatchObject({ status: 0, stderr: '' });
    expect(independent.stdout).toMatch(/^OK: leaf 1 \(seq 2\) is in 127\.0\.0\.1\/packtrust-evidence at tree size 2\n/);
    const other = await run('python3', [
      VERIFY_RECEIPT,
      join(files.receipts, receipt),
      hub.notary.verifierKey,
      '--leaf',
      join(out, 'body.bin'),
    ]);
    expect(other.status).toBe(1);
    const request = readFileSync(join(out, 'request.http'), 'latin1');
    expect(request).toMatch(
      /^POST \/v1\/products\/09506000134352\/batches\/LOT%2F42\/packs\?expiry=290100 HTTP\/1\.1\r\n/,
    );
    expect(request).toMatch(/signature-input: sig1=/i);
    const missing = await run(GATEWAY, ['--data-dir', dataDir, 'evidence', 'export', '--seq', '99', '--out', out]);
    expect(missing.status).toBe(1);
  });

  it('onboards a pharmacy client whose software gets a token with packtrust-token, until it is disabled', async () => {
    const key = join(work, 'pharmacy-key.json');
    const jwks = join(work, 'pharmacy-jwks.json');
    expect((await run(TOKEN, ['keygen', '--key-out', key, '--jwks-out', jwks])).status).toBe(0);
    const added = await run(GATEWAY, [
      '--data-dir',
      hub.dir,
      'client',
      'add',
      '--market',
      'DE',
      '--role',
      'pharmacy',
      '--location',
      'APO-17',
      '--org',
      'APO',
      '--jwks',
      jwks,
    ]);
    expect(added.status).toBe(0);
    const { clientId } = JSON.parse(added.stdout) as { clientId: string };
    const listed = JSON.parse((await run(GATEWAY, ['--data-dir', hub.dir, 'client', 'list'])).stdout) as {
      clientId: string;
    }[];
    expect(listed.map((c) => c.clientId)).toContain(clientId);
    const token = (args: string[] = []) =>
      run(TOKEN, [
        'token',
        '--issuer',
        hub.oauth.issuer,
        '--client-id',
        clientId,
        '--key',
        key,
        '--ca',
        files.ca,
        ...args,
      ]);
    const got = await token();
    expect(got.status).toBe(0);
    expect(JSON.parse(got.stdout).access_token).toMatch(/^ey/);
    const untrusted = await run(TOKEN, ['token', '--issuer', hub.oauth.issuer, '--client-id', clientId, '--key', key]);
    expect(untrusted.status).toBe(1);
    expect(untrusted.stderr).toBe(
      `error [BAD_REQUEST]: Cannot reach the token endpoint ${hub.oauth.issuer}/token: self-signed certificate in certificate chain; give the CA chain that issued the hub's certificate with --ca\n`,
    );
    expect((await run(GATEWAY, ['--data-dir', hub.dir, 'client', 'disable', '--client-id', clientId])).status).toBe(0);
    const refused = await token();
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('invalid_client');
    const bad = await run(GATEWAY, [
      '--data-dir',
      hub.dir,
      'client',
      'add',
      '--market',
      'Germany',
      '--role',
      'pharmacy',
      '--location',
      'x',
      '--org',
      'y',
      '--secret',
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('OAUTH_CLIENT_INVALID');
  });
});

describe('packtrust-gateway keys', () => {
  it('rotates the signing keys with the data directory and passphrase file from the environment alone', async () => {
    const passphraseFile = join(work, 'oauth-passphrase');
    writeFileSync(passphraseFile, 'oauth key passphrase for tests\n');
    const env = { PACKTRUST_GATEWAY_DATA_DIR: hub.dir, PACKTRUST_GATEWAY_OAUTH_PASSPHRASE_FILE: passphraseFile };
    const keys = (...args: string[]) => runWithEnv(GATEWAY, ['keys', ...args], env);
    const before = JSON.parse((await keys('list')).stdout) as unknown[];
    const rotated = await keys('rotate');
    expect(rotated.stderr).toBe('');
    expect(rotated.stdout).toMatch(/^new signing key \S+\n$/);
    expect(JSON.parse((await keys('list')).stdout)).toHaveLength(before.length + 1);
  });
});

describe('packtrust-gateway prefix', () => {
  const prefix = (...args: string[]) => run(GATEWAY, ['--data-dir', hub.dir, 'prefix', ...args]);

  it('registers, lists, moves with its products and removes prefixes while the gateway runs', async () => {
    const added = await prefix('add', 'BETA', '4012345');
    expect(added.status).toBe(0);
    expect(JSON.parse(added.stdout)).toEqual({ prefix: '4012345', org: 'BETA', since: expect.any(String) });
    const again = await prefix('add', 'BETA', '4012345');
    expect(again.status).toBe(0);
    expect(again.stderr).toBe('Prefix 4012345 was already registered for BETA; nothing changed.\n');
    expect(JSON.parse((await prefix('list', '--org', 'BETA')).stdout)).toEqual([JSON.parse(added.stdout)]);

    const overlap = await prefix('add', 'BETA', '95060001');
    expect(overlap.status).toBe(1);
    expect(overlap.stderr).toBe(
      'error [HUB_PREFIX_OVERLAP]: Prefix 95060001 overlaps 9506000, registered for ACME; GS1 prefixes never overlap\n',
    );
    const inUse = await prefix('remove', '9506000');
    expect(inUse.status).toBe(1);
    expect(inUse.stderr).toMatch(
      /^error \[HUB_PREFIX_IN_USE\]: Products are registered under 9506000 \(09506000134352\)/,
    );

    const moved = await prefix('move', '9506000', '--to', 'BETA');
    expect(moved.status).toBe(0);
    expect(JSON.parse(moved.stdout)).toEqual({ prefix: '9506000', from: 'ACME', to: 'BETA', products: 1 });
    expect(
      JSON.parse((await prefix('list')).stdout).map((p: { prefix: string; org: string }) => `${p.prefix} ${p.org}`),
    ).toEqual(['4012345 BETA', '9506000 BETA']);
    const serialsFile = join(work, 'after-move.txt');
    writeFileSync(serialsFile, randomSerials(100).join('\n'));
    const refused = await upload(
      'packs',
      '--product',
      '09506000134352',
      '--batch',
      'LOT/44',
      '--expiry',
      '290100',
      '--file',
      serialsFile,
    );
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('HUB_NOT_OWNER');

    const removed = await prefix('remove', '4012345');
    expect(removed.stdout).toBe('removed prefix 4012345 of BETA\n');
    const unknown = await prefix('remove', '4012345');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('error [HUB_PREFIX_UNKNOWN]: Prefix 4012345 is not registered\n');
    const invalid = await prefix('add', 'BETA', '123');
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toBe(
      'error [HUB_PREFIX_INVALID]: prefix "123" has 3 digits; a company prefix has 4 to 12\n',
    );

    // Four changes: ACME's prefix (registered by the test fixture), BETA's, the move, the removal.
    const verified = await prefix('audit', 'verify');
    expect(verified.stdout).toBe('prefix audit log intact: 4 entries checked, last 4\n');
    const lines = (await prefix('audit', 'list', '--from', '3')).stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^3\t\S+\tcli:\S+@\S+\tmove\t9506000\tACME -> BETA\t1 products$/);
    expect(lines[1]).toMatch(/^4\t\S+\tcli:\S+@\S+\tremove\t4012345\tBETA$/);
  }, 120_000);
});
