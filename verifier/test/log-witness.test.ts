import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openCheckpoint } from '../../common/src/checkpoint.ts';
import { EvidenceNotary } from '../../gateway/src/evidence-checkpoints.ts';
import { randomSerials, startTestHub, type TestHub } from '../../gateway/test/fixtures.ts';
import type { RunningVerifierNode } from '../src/service.ts';
import { startTestNode } from './fixtures.ts';

let hub: TestHub;
let node: RunningVerifierNode;
const dir = mkdtempSync(join(tmpdir(), 'packtrust-witness-'));

beforeAll(async () => {
  hub = await startTestHub({ markets: ['DE'] });
  await hub.seedProduct('09506000134352', ['DE'], 10);
  node = await startTestNode(hub, 'DE', 'de-1', dir);
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
}, 60_000);

afterAll(async () => {
  await dispatcher?.close();
  await node?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

let dispatcher: Agent;
const witnessed = async () => {
  const res = await request(`${node.url}/v1/evidence/checkpoint`, { dispatcher });
  return { status: res.statusCode, type: res.headers['content-type'], body: await res.body.text() };
};

/**
 * Makes `note` the hub's newest checkpoint, which its feed answers carry: what a hub whose
 * operator rewrote its store (and holds, or lost, its key) would hand out.
 */
async function serve(note: string, size: number): Promise<void> {
  const checkpoints = hub.store.store.db<string, number>('evidence-checkpoints', { encoding: 'string' });
  await hub.store.transaction(() => {
    for (const key of [...checkpoints.getKeys({ start: size })]) checkpoints.removeSync(key);
    checkpoints.putSync(size, note);
  });
}

describe('a verifier node as witness of the hub evidence log', () => {
  it('keeps and serves the newest checkpoint, signed by the log key and consistent with the last', async () => {
    const size = hub.store.evidence.treeSize();
    expect(size).toBe(2);
    await vi.waitFor(() => expect(node.witness?.status.witnessedSize).toBe(size), { timeout: 20_000, interval: 100 });
    const served = await witnessed();
    expect(served).toMatchObject({ status: 200, type: 'text/plain; charset=utf-8' });
    expect(openCheckpoint(served.body, hub.notary.verifierKey)).toMatchObject({
      size,
      root: hub.store.evidence.root(size),
    });
    // Growth the hub can prove is witnessed too.
    const up = hub.client(await hub.credential('manufacturer', 'ACME'));
    const batch = await up.write(
      'POST',
      '/v1/products/09506000134352/batches/B2/packs?expiry=291200',
      randomSerials(3).join('\n'),
      {
        contentType: 'text/plain',
      },
    );
    expect(batch.status).toBe(201);
    const grown = hub.store.evidence.treeSize();
    expect(grown).toBeGreaterThan(size);
    await vi.waitFor(() => expect(node.witness?.status.witnessedSize).toBe(grown), { timeout: 20_000, interval: 100 });
    expect(node.witness?.status.failures).toBe(0);
  });

  it('refuses a checkpoint of another key, a forked tree and one the hub cannot prove, and keeps the last good one', async () => {
    const before = (await witnessed()).body;
    const size = openCheckpoint(before, hub.notary.verifierKey).size;
    const stranger = new EvidenceNotary(hub.notary.origin, generateKeyPairSync('ed25519').privateKey);
    const cases = [
      { size: size + 1, note: stranger.sign(size + 1, randomBytes(32)), code: 'CHECKPOINT_INVALID' },
      { size, note: hub.notary.sign(size, randomBytes(32)), code: 'LOG_FORKED' },
      { size: size + 5, note: hub.notary.sign(size + 5, randomBytes(32)), code: 'LOG_INCONSISTENT' },
    ];
    for (const [i, c] of cases.entries()) {
      await serve(c.note, c.size);
      await vi.waitFor(() => expect(node.witness?.status.failures).toBe(i + 1), { timeout: 20_000, interval: 100 });
      expect(node.witness?.status.lastProblem?.code).toBe(c.code);
      expect((await witnessed()).body).toBe(before);
    }
    const metrics = await (await request(`${node.url}/metrics`, { dispatcher })).body.text();
    expect(metrics).toContain('packtrust_evidence_checkpoints_refused{market="DE",node="de-1"} 3\n');
  });
});
