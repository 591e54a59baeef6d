import { createHash, webcrypto } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../ca/test/fixtures.ts';
import { openCheckpoint } from '../../common/src/checkpoint.ts';
import { FMD_MARKETS } from '../../common/src/markets.ts';
import { verifyInclusion } from '../../common/src/merkle.ts';
import { toPem, x509 } from '../../common/src/pki.ts';
import { decodeReceiptEvidence, EVIDENCE_HEADER } from '../../common/src/receipt-evidence.ts';
import { RequestSigner } from '../../common/src/signed-request.ts';
import { type EvidenceRecord, type InclusionEvidence, sha256Hex } from '../src/evidence.ts';
import { HubStore } from '../src/hub-store.ts';
import { type Credential, productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

const GATEWAY = fileURLToPath(new URL('../../bin/packtrust-gateway.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'packtrust-evidence-'));
const files = {
  chain: join(work, 'chain.pem'),
  crl: join(work, 'issuing.crl'),
  key: join(work, 'log-key.txt'),
  checkpoint: join(work, 'checkpoint.txt'),
  receipts: join(work, 'receipts'),
};
let hub: TestHub;
let acme: Credential;
const CODE = '09506000134352';

beforeAll(async () => {
  hub = await startTestHub();
  await hub.registerPrefix('ACME', '9506000');
  acme = await hub.credential('manufacturer', 'ACME');
  const up = hub.client(acme);
  mkdirSync(files.receipts);
  const keep = (name: string, res: Awaited<ReturnType<typeof up.write>>) => {
    expect(res.receipt).toBeDefined();
    writeFileSync(join(files.receipts, `${name}.json`), JSON.stringify(res.receipt));
  };
  keep('product', await up.write('POST', '/v1/products', JSON.stringify(productJson(CODE, ['DE']))));
  for (let i = 1; i <= 8; i++) {
    const res = await up.write(
      'POST',
      `/v1/products/${CODE}/batches/L${i}/packs?expiry=291200`,
      randomSerials(50).join('\n'),
      {
        contentType: 'text/plain',
      },
    );
    expect(res.status).toBe(201);
    keep(`batch-${i}`, res);
  }
  // A checkpoint of all nine records, as a verifier node or an auditor fetches and keeps it.
  await vi.waitFor(() => expect(hub.store.evidence.latestCheckpoint()?.size).toBe(9), {
    timeout: 20_000,
    interval: 100,
  });
  const checkpoint = await up.get('/v1/evidence/checkpoint');
  expect(checkpoint.status).toBe(200);
  writeFileSync(files.checkpoint, checkpoint.body);
  writeFileSync(files.key, `${hub.notary.verifierKey}\n`);
  writeFileSync(files.chain, hub.t.ca.chainPem());
  writeFileSync(files.crl, hub.t.ca.currentCrl());
  // The attacks below are made on the store at rest, as whoever holds its files could.
  await hub.stop();
}, 120_000);

afterAll(async () => {
  await hub?.start();
  await hub?.close();
  rmSync(work, { recursive: true, force: true });
});

const verify = (...extra: string[]) =>
  run(GATEWAY, [
    '--data-dir',
    hub.dir,
    'evidence',
    'verify',
    '--ca-chain',
    files.chain,
    '--crl',
    files.crl,
    '--log-key',
    files.key,
    ...extra,
  ]);
const withReceipts = ['--checkpoint', files.checkpoint, '--receipts', files.receipts];

/** Opens the hub store at rest, as an attacker with the files would, and closes it after `fn`. */
async function tamper(fn: (store: HubStore) => void): Promise<void> {
  const store = new HubStore(join(hub.dir, 'hub'), FMD_MARKETS);
  try {
    await store.transaction(() => fn(store));
  } finally {
    await store.close();
  }
}

const LOG_DATABASES = ['evidence', 'evidence-bodies', 'evidence-tree', 'evidence-checkpoints'] as const;
const openLogDb = (store: HubStore, name: (typeof LOG_DATABASES)[number]) =>
  store.store.db<unknown, never>(name, name === 'evidence' ? {} : { encoding: 'binary' });

/** Empties the stored tree and the kept checkpoints, as whoever holds the store's files could. */
function dropTreeAndCheckpoints(store: HubStore): void {
  for (const name of ['evidence-tree', 'evidence-checkpoints'] as const) {
    const db = openLogDb(store, name);
    for (const key of [...db.getKeys()]) db.removeSync(key);
  }
}

/** What the store holds of the log, and how to put it back (in another opening of the store) after an attack. */
function snapshot(store: HubStore): (into: HubStore) => void {
  const saved = LOG_DATABASES.map((name) => ({
    name,
    entries: [...openLogDb(store, name).getRange()].map(({ key, value }) => ({ key, value })),
  }));
  return (into) => {
    for (const { name, entries } of saved) {
      const db = openLogDb(into, name);
      for (const key of [...db.getKeys()]) db.removeSync(key);
      for (const { key, value } of entries) db.putSync(key, value);
    }
  };
}

/** Appends, as record 10, a product write "signed" by `signer` as the hub would have kept it; returns the undo. */
async function fabricate(
  signer: Pick<Credential, 'certPem' | 'keyPem'>,
  receivedAt = new Date(),
): Promise<(into: HubStore) => void> {
  const body = Buffer.from(JSON.stringify(productJson(CODE, ['DE', 'FR'])));
  const targetUri = `${hub.hubUrl}/v1/products`;
  const signed = new RequestSigner(signer.certPem, signer.keyPem).sign('POST', targetUri, body, 'application/json');
  const der = new x509.X509Certificate(signer.certPem).rawData;
  let restore: (into: HubStore) => void = () => {};
  await tamper((store) => {
    restore = snapshot(store);
    const record: EvidenceRecord = {
      receivedAt: receivedAt.toISOString(),
      method: 'POST',
      targetUri,
      headers: Object.entries(signed.headers),
      bodySha256: sha256Hex(body),
      bodyLength: body.length,
      signatureLabel: 'sig1',
      nonce: /nonce="([^"]+)"/.exec(signed.headers['signature-input']!)![1]!,
      clientCertificates: [Buffer.from(der).toString('base64')],
      clientFingerprint: createHash('sha256').update(Buffer.from(der)).digest('hex'),
      org: 'ACME',
      response: { status: 200, headers: [], bodySha256: sha256Hex(Buffer.from('{}')) },
    };
    expect(store.evidence.append(record, body).seq).toBe(10);
  });
  return restore;
}

describe('receipts', () => {
  it('carry the record inclusion proof and a checkpoint signed by the log key', () => {
    const names = readdirSync(files.receipts);
    expect(names).toHaveLength(9);
    const receipt = JSON.parse(readFileSync(join(files.receipts, 'batch-8.json'), 'utf8')) as {
      response: { headers: Record<string, string>; body: string };
    };
    const e = decodeReceiptEvidence(receipt.response.headers[EVIDENCE_HEADER]!);
    const cp = openCheckpoint(e.checkpoint, hub.notary.verifierKey);
    expect(cp).toMatchObject({ origin: '127.0.0.1/packtrust-evidence', size: 9 });
    expect(e).toMatchObject({ seq: 9, leafIndex: 8, treeSize: 9 });
    const proof = e.inclusionProof.map((h) => Buffer.from(h, 'base64'));
    expect(verifyInclusion(8, 9, Buffer.from(e.leafHash, 'base64'), proof, cp.root)).toBe(true);
    expect(JSON.parse(receipt.response.body)).toMatchObject({ evidence: { seq: 9 } });
  });
});

describe('packtrust-gateway evidence verify', () => {
  it('finds the log intact against the CA, the checkpoint and the receipts', async () => {
    const r = await verify(...withReceipts);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toBe(
      'evidence intact: 9 records, 9 under a signed checkpoint; 2 checkpoints and 9 receipts checked\n',
    );
  });

  it("(a) names a rewritten answer even when the whole tree was recomputed and the store's checkpoints dropped", async () => {
    let restore: (into: HubStore) => void = () => {};
    await tamper((store) => {
      restore = snapshot(store);
      const db = store.store.db<{ seq: number; body: EvidenceRecord }, number>('evidence');
      const entry = db.get(4)!;
      const rewritten = JSON.stringify({ status: 422, code: 'HUB_MASTER_DATA_INVALID' });
      db.putSync(4, {
        ...entry,
        body: {
          ...entry.body,
          response: { ...entry.body.response, status: 422, bodySha256: sha256Hex(Buffer.from(rewritten)) },
        },
      });
      // Everything the store can hold is made to agree: the tree rebuilt, its checkpoints gone.
      dropTreeAndCheckpoints(store);
    });
    const rebuilt = new HubStore(join(hub.dir, 'hub'), FMD_MARKETS);
    expect(rebuilt.evidence.buildTree(rebuilt.store)).toBe(9);
    await rebuilt.close();
    const r = await verify(...withReceipts);
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('LOG_REWRITTEN (record 4): record 4 is not the record');
    expect(r.stderr).toContain('(the recorded answer is not the one given)');
    expect(r.stderr).toContain(
      `LOG_REWRITTEN (record 9): the first 9 records do not have the root ${files.checkpoint} signed`,
    );
    await tamper(restore);
  });

  it('the gateway signs nothing more, and does not start, once its log was changed under it', async () => {
    const fault = expect.objectContaining({ code: 'HUB_EVIDENCE_TREE_TAMPERED' });
    const attempt = async (change: (store: HubStore) => void, check: (store: HubStore) => void) => {
      let restore: (into: HubStore) => void = () => {};
      await tamper((store) => {
        restore = snapshot(store);
        change(store);
      });
      const changed = new HubStore(join(hub.dir, 'hub'), FMD_MARKETS);
      try {
        check(changed);
      } finally {
        await changed.close();
        await tamper(restore);
      }
    };
    const record = (store: HubStore) => store.evidence.record(2)!.body;
    // A record slipped in by the store's holder: the gateway's next own record ends a tree that is
    // not the one it signed last plus that record, so it signs nothing; a restart does not start.
    await attempt(
      (store) => store.evidence.append(record(store), store.evidence.body(2)!),
      (store) => {
        expect(() => hub.notary.open(store.evidence, store.store)).toThrow(fault);
        // What the running gateway does at its next write (rolled back: only the refusal matters).
        const ownWrite = () =>
          store.store.transactionSync(() => {
            const own: InclusionEvidence = store.evidence.append(record(store), store.evidence.body(2)!);
            hub.notary.receiptEvidence(store.evidence, own);
          });
        expect(ownWrite).toThrow(fault);
      },
    );
    // A record rewritten, the tree left alone: the newest leaves are recomputed at every start.
    await attempt(
      (store) => {
        const db = store.store.db<{ seq: number; body: EvidenceRecord }, number>('evidence');
        const entry = db.get(5)!;
        db.putSync(5, { ...entry, body: { ...entry.body, response: { ...entry.body.response, status: 403 } } });
      },
      (store) => expect(() => hub.notary.open(store.evidence, store.store)).toThrow(fault),
    );
    // The checkpoints and the tree removed, as if the log were from before the tree: only a log of
    // old hash-chained records may be built and signed at start; records of this version may not.
    await attempt(dropTreeAndCheckpoints, (store) =>
      expect(() => hub.notary.open(store.evidence, store.store)).toThrow(fault),
    );
    // A log really written before the tree (its records carry the old chain's prev and hash) gets
    // its tree and a first checkpoint at start: the same tree, as the leaf leaves those out.
    await attempt(
      (store) => {
        dropTreeAndCheckpoints(store);
        const db = store.store.db<Record<string, unknown>, number>('evidence');
        for (const { key, value } of [...db.getRange()]) db.putSync(key, { ...value, prev: '0'.repeat(64), hash: 'h' });
      },
      (store) => {
        const signedRoot = openCheckpoint(readFileSync(files.checkpoint, 'utf8'), hub.notary.verifierKey).root;
        hub.notary.open(store.evidence, store.store);
        expect(store.evidence.root(9)).toEqual(signedRoot);
        expect(store.evidence.latestCheckpoint()?.size).toBe(9);
      },
    );
    // A record rewritten and the tree rebuilt to match: the kept checkpoint's root is not the log's.
    await attempt(
      (store) => {
        const db = store.store.db<{ seq: number; body: EvidenceRecord }, number>('evidence');
        const entry = db.get(3)!;
        db.putSync(3, { ...entry, body: { ...entry.body, response: { ...entry.body.response, status: 500 } } });
        const tree = store.store.db('evidence-tree', { encoding: 'binary' });
        for (const key of [...tree.getKeys()]) tree.removeSync(key);
      },
      (store) => {
        expect(store.evidence.buildTree(store.store)).toBe(9);
        expect(() => hub.notary.open(store.evidence, store.store)).toThrow(fault);
      },
    );
  });

  it('(b) names a log whose newest five records were removed', async () => {
    let restore: (into: HubStore) => void = () => {};
    await tamper((store) => {
      restore = snapshot(store);
      const names = ['evidence', 'evidence-bodies'] as const;
      for (const name of names)
        for (let seq = 5; seq <= 9; seq++) store.store.db(name, { encoding: 'binary' }).removeSync(seq);
      const tree = store.store.db<Buffer, [number, number]>('evidence-tree', { encoding: 'binary' });
      for (const [level, index] of [...tree.getKeys()])
        if ((index + 1) * 2 ** level > 4) tree.removeSync([level, index]);
      const cps = store.store.db('evidence-checkpoints', { encoding: 'string' });
      for (const key of [...cps.getKeys()]) cps.removeSync(key);
    });
    const alone = await verify();
    expect(alone).toMatchObject({ status: 0 });
    const r = await verify(...withReceipts);
    expect(r.status).toBe(7);
    expect(r.stderr).toContain(`LOG_TRUNCATED: ${files.checkpoint} is signed for 9 records; the log holds 4`);
    const receiptsOnly = await verify('--receipts', files.receipts);
    expect(receiptsOnly.status).toBe(7);
    expect(receiptsOnly.stderr).toMatch(/LOG_TRUNCATED: .*batch-8\.json is signed for 9 records; the log holds 4/);
    await tamper(restore);
  });

  it('(c) names a record fabricated with a self-signed certificate in the manufacturer name', async () => {
    const real = new x509.X509Certificate(acme.certPem);
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
    const forged = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: real.serialNumber,
      name: real.subjectName,
      notBefore: new Date(Date.now() - 86_400_000),
      notAfter: new Date(Date.now() + 86_400_000),
      keys,
      signingAlgorithm: alg,
      extensions: real.extensions,
    });
    const keyPem = toPem(new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), 'PRIVATE KEY');
    const restore = await fabricate({ certPem: forged.toString('pem'), keyPem });
    const r = await verify(...withReceipts);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain('CERTIFICATE_UNTRUSTED (record 10): the client certificate');
    expect(r.stderr).toContain('was not issued by the packtrust CA');
    await tamper(restore);
    expect((await verify(...withReceipts)).status).toBe(0);
  });

  it('names a real request replayed by the store holder under another organisation and time', async () => {
    let restore: (into: HubStore) => void = () => {};
    await tamper((store) => {
      restore = snapshot(store);
      const original = store.evidence.record(2)!.body;
      const earlier = new Date(Date.parse(store.evidence.record(1)!.body.receivedAt) - 60_000).toISOString();
      store.evidence.append({ ...original, org: 'FORGED', receivedAt: earlier }, store.evidence.body(2)!);
    });
    const r = await verify(...withReceipts).finally(() => tamper(restore));
    expect(r.status).toBe(3);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('RECORD_INVALID'))).toEqual([
      expect.stringMatching(/^RECORD_INVALID \(record 10\): its time .* is before that of the record before it$/),
      'RECORD_INVALID (record 10): it repeats the request of record 2 (same nonce)',
      'RECORD_INVALID (record 10): it repeats the request of record 2 (same signature)',
      'RECORD_INVALID (record 10): its organisation "FORGED" is not that of its certificate',
    ]);
  });

  it('names a record whose certificate was revoked before it was received', async () => {
    // Revoked after the records were made: they stay good. The CRL's revocation date is what counts.
    await hub.t.ca.revoke(acme.serial, 'keyCompromise', 'test');
    writeFileSync(files.crl, hub.t.ca.currentCrl());
    expect((await verify(...withReceipts)).status).toBe(0);
    // A record made with the real key after the revocation (the gateway refuses those; the store's
    // holder wrote it), dated past the second the CRL gives, which verify gives the benefit of the doubt.
    const restore = await fabricate(acme, new Date(Date.now() + 2000));
    const r = await verify(...withReceipts);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(
      /^CERTIFICATE_REVOKED \(record 10\): the client certificate [0-9A-F]+ was revoked at .*, before the record/m,
    );
    await tamper(restore);
  });
});
