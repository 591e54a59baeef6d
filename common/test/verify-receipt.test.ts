/**
 * scripts/verify-receipt.py, the check a manufacturer runs without our code (python3 and openssl
 * only), against receipts made with merkle.ts and checkpoint.ts. Both tools must be there: CI
 * has them, and on a machine without them these tests fail, the first saying which is missing.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { signCheckpoint, verifierKey } from '../src/checkpoint.ts';
import { appendLeaf, type Frontier, inclusionProof, leafHash, rootFromFrontier } from '../src/merkle.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/verify-receipt.py', import.meta.url));
const ORIGIN = 'packtrust.example/evidence';
const HUB = generateKeyPairSync('ed25519');
const VKEY = verifierKey(ORIGIN, HUB.publicKey);
const KEY_ID = VKEY.split('+')[1]!;
const TIME = '2026-07-24T09:30:00.123Z';

const dir = mkdtempSync(join(tmpdir(), 'verify-receipt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A log of `size` leaves, each the bytes `record <i>`, with its checkpoint signed now. */
function makeLog(size: number) {
  const data = Array.from({ length: size }, (_, i) => Buffer.from(`record ${i}`));
  const stored = new Map<string, Buffer>();
  let frontier: Frontier = [];
  for (const [i, d] of data.entries()) {
    const appended = appendLeaf(frontier, i, leafHash(d));
    for (const s of appended.completed) stored.set(`${s.level}/${s.index}`, s.hash);
    frontier = appended.frontier;
  }
  const root = rootFromFrontier(frontier);
  const checkpoint = signCheckpoint(
    { origin: ORIGIN, size, root, time: new Date(TIME) },
    { name: ORIGIN, key: HUB.privateKey },
  );
  const receipt = (index: number) => ({
    id: 'a receipt field the script does not read',
    evidence: {
      seq: index + 1,
      leafIndex: index,
      leafHash: leafHash(data[index]!).toString('base64'),
      checkpoint,
      inclusionProof: inclusionProof(index, size, (level, i) => stored.get(`${level}/${i}`)!).map((p) =>
        p.toString('base64'),
      ),
    },
  });
  return { data, root, receipt };
}

type Receipt = ReturnType<ReturnType<typeof makeLog>['receipt']>;

function verifyReceipt(receipt: Receipt, vkey = VKEY, ...extra: string[]) {
  const file = join(dir, 'receipt.json');
  writeFileSync(file, JSON.stringify(receipt));
  const result = spawnSync('python3', [SCRIPT, file, vkey, ...extra], { encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const LOG = makeLog(13);

function ok(index: number, root = LOG.root, size = 13) {
  return {
    status: 0,
    stdout:
      `OK: leaf ${index} (seq ${index + 1}) is in ${ORIGIN} at tree size ${size}\n` +
      `checkpoint time ${TIME}, root ${root.toString('base64')}\n` +
      `signed by ${ORIGIN} (${KEY_ID}), verified with openssl\n`,
    stderr: '',
  };
}
const failed = (why: string, status = 1) => ({ status, stdout: '', stderr: `FAILED: ${why}\n` });
const error = (why: string) => ({ status: 2, stdout: '', stderr: `ERROR: ${why}\n` });

describe('scripts/verify-receipt.py', () => {
  // Not a skip condition: without either tool, this test says which one is missing, and every
  // other test fails too.
  it('runs where python3 and openssl are installed, as on CI', () => {
    for (const [tool, args] of [
      ['python3', ['--version']],
      ['openssl', ['version']],
    ] as const) {
      const probe = spawnSync(tool, args, { encoding: 'utf8' });
      expect(
        probe.error || probe.status !== 0 ? `${tool} is missing: ${probe.error?.message ?? probe.stderr}` : 'found',
        `scripts/verify-receipt.py needs ${tool}; CI installs it`,
      ).toBe('found');
    }
  });

  it('accepts the receipt of every leaf of a log of 13, and of a log of one leaf', () => {
    for (let index = 0; index < 13; index++)
      expect(verifyReceipt(LOG.receipt(index)), `leaf ${index}`).toEqual(ok(index));
    const single = makeLog(1);
    expect(single.receipt(0).evidence.inclusionProof).toEqual([]);
    expect(verifyReceipt(single.receipt(0))).toEqual(ok(0, single.root, 1));
  });

  it('checks the leaf hash against the leaf’s bytes with --leaf', () => {
    const leaf = join(dir, 'leaf');
    writeFileSync(leaf, LOG.data[6]!);
    expect(verifyReceipt(LOG.receipt(6), VKEY, '--leaf', leaf)).toEqual(ok(6));
    writeFileSync(leaf, LOG.data[7]!);
    expect(verifyReceipt(LOG.receipt(6), VKEY, '--leaf', leaf)).toEqual(
      failed(`the leaf hash is not SHA-256(0x00 || ${leaf})`),
    );
  });

  it('refuses a tampered inclusion proof, leaf hash or index', () => {
    const receipt = LOG.receipt(6);
    const proof = receipt.evidence.inclusionProof.map((p) => Buffer.from(p, 'base64'));
    proof[1]![0]! ^= 0x01;
    const tampered = {
      ...receipt,
      evidence: { ...receipt.evidence, inclusionProof: proof.map((p) => p.toString('base64')) },
    };
    const why = "the inclusion proof does not lead from leaf 6 to the checkpoint's root";
    expect(verifyReceipt(tampered)).toEqual(failed(why));
    const short = {
      ...receipt,
      evidence: { ...receipt.evidence, inclusionProof: receipt.evidence.inclusionProof.slice(1) },
    };
    expect(verifyReceipt(short)).toEqual(failed(why));
    const otherLeaf = { ...receipt, evidence: { ...receipt.evidence, leafHash: LOG.receipt(7).evidence.leafHash } };
    expect(verifyReceipt(otherLeaf)).toEqual(failed(why));
    const otherIndex = { ...receipt, evidence: { ...receipt.evidence, leafIndex: 7 } };
    expect(verifyReceipt(otherIndex)).toEqual(
      failed("the inclusion proof does not lead from leaf 7 to the checkpoint's root"),
    );
    const outside = { ...receipt, evidence: { ...receipt.evidence, leafIndex: 13 } };
    expect(verifyReceipt(outside)).toEqual(failed("leaf 13 is not in the checkpoint's tree of 13 leaves"));
  });

  it('refuses a tampered checkpoint signature or text, and a checkpoint of another key', () => {
    const receipt = LOG.receipt(3);
    const [text, line] = receipt.evidence.checkpoint.split('\n\n') as [string, string];
    const sig = Buffer.from(line.trimEnd().split(' ')[2]!, 'base64');
    sig[20]! ^= 0x01;
    const badSignature = `${text}\n\n— ${ORIGIN} ${sig.toString('base64')}\n`;
    const why = `the checkpoint's signature by ${ORIGIN} (${KEY_ID}) does not verify`;
    expect(verifyReceipt({ ...receipt, evidence: { ...receipt.evidence, checkpoint: badSignature } })).toEqual(
      failed(why),
    );
    const badText = receipt.evidence.checkpoint.replace(TIME, '2026-07-24T09:30:00.124Z');
    expect(verifyReceipt({ ...receipt, evidence: { ...receipt.evidence, checkpoint: badText } })).toEqual(failed(why));
    const otherVkey = verifierKey(ORIGIN, generateKeyPairSync('ed25519').publicKey);
    expect(verifyReceipt(receipt, otherVkey)).toEqual(
      failed(`the checkpoint has no signature by ${ORIGIN} (${otherVkey.split('+')[1]})`),
    );
  });

  it('says what it cannot read: the receipt, the checkpoint, the verifier key', () => {
    const receipt = LOG.receipt(3);
    expect(verifyReceipt({ id: 'x' } as unknown as Receipt)).toEqual(
      error("the receipt has no 'evidence' object and no packtrust-evidence header"),
    );
    const noHash = { ...receipt, evidence: { ...receipt.evidence, leafHash: 'AAAA' } };
    expect(verifyReceipt(noHash)).toEqual(error('evidence.leafHash is 3 bytes, not 32'));
    const noDash = receipt.evidence.checkpoint.replace('— ', '- ');
    expect(verifyReceipt({ ...receipt, evidence: { ...receipt.evidence, checkpoint: noDash } })).toEqual(
      error('a signature line of the checkpoint does not start with an em dash and a space'),
    );
    expect(verifyReceipt(receipt, VKEY.replace(KEY_ID, '00000000'))).toEqual(
      error("the verifier key's key ID is not that of its name and key"),
    );
  });
});
