import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openCheckpoint } from '../../common/src/checkpoint.ts';
import { EvidenceNotary } from '../../gateway/src/evidence-checkpoints.ts';
import { productJson, randomSerials } from '../../gateway/test/fixtures.ts';
import { type NodeHarness, startNodeHarness } from './fixtures.ts';

let h: NodeHarness;

beforeAll(async () => {
  // A long feed wait, as in production: a feed answer comes only with records, so a write that
  // makes none reaches the node's witness only by the witness asking the hub.
  h = await startNodeHarness({ name: 'witness', seed: 10, hub: { markets: ['DE'] }, node: { feedWaitMs: 60_000 } });
}, 60_000);

afterAll(() => h?.close());

const witnessed = async () => {
  const res = await h.send('/v1/evidence/checkpoint', { bearer: '' });
  return { status: res.status, type: res.headers['content-type'], body: res.body.toString() };
};

/**
 * Makes `note` the hub's newest checkpoint, which its feed answers carry: what a hub whose
 * operator rewrote its store (and holds, or lost, its key) would hand out.
 */
async function serve(note: string, size: number): Promise<void> {
  const checkpoints = h.hub.store.store.db<string, number>('evidence-checkpoints', { encoding: 'string' });
  await h.hub.store.transaction(() => {
    for (const key of [...checkpoints.getKeys({ start: size })]) checkpoints.removeSync(key);
    checkpoints.putSync(size, note);
  });
}

describe('a verifier node as witness of the hub evidence log', () => {
  it('keeps and serves the newest checkpoint, signed by the log key and consistent with the last', async () => {
    const size = h.hub.store.evidence.treeSize();
    expect(size).toBe(2);
    await vi.waitFor(() => expect(h.node.witness?.status.witnessedSize).toBe(size), { timeout: 20_000, interval: 100 });
    const served = await witnessed();
    expect(served).toMatchObject({ status: 200, type: 'text/plain; charset=utf-8' });
    expect(openCheckpoint(served.body, h.hub.notary.verifierKey)).toMatchObject({
      size,
      root: h.hub.store.evidence.root(size),
    });
    // Growth the hub can prove is witnessed too.
    const up = h.hub.client(await h.hub.credential('manufacturer', 'ACME'));
    const batch = await up.write(
      'POST',
      '/v1/products/09506000134352/batches/B2/packs?expiry=291200',
      randomSerials(3).join('\n'),
      {
        contentType: 'text/plain',
      },
    );
    expect(batch.status).toBe(201);
    const grown = h.hub.store.evidence.treeSize();
    expect(grown).toBeGreaterThan(size);
    await vi.waitFor(() => expect(h.node.witness?.status.witnessedSize).toBe(grown), {
      timeout: 20_000,
      interval: 100,
    });
    // A refusal is evidence too, and puts nothing on a feed.
    const refused = await up.write('POST', '/v1/products', JSON.stringify(productJson('04012345000016', ['DE'])));
    expect(refused.status).toBe(403);
    const after = h.hub.store.evidence.treeSize();
    expect(after).toBe(grown + 1);
    await vi.waitFor(() => expect(h.node.witness?.status.witnessedSize).toBe(after), {
      timeout: 20_000,
      interval: 100,
    });
    expect(h.node.witness?.status.failures).toBe(0);
  });

  it('refuses a checkpoint of another key, a forked tree and one the hub cannot prove, and keeps the last good one', async () => {
    const before = (await witnessed()).body;
    const size = openCheckpoint(before, h.hub.notary.verifierKey).size;
    const stranger = new EvidenceNotary(h.hub.notary.origin, generateKeyPairSync('ed25519').privateKey);
    const cases = [
      { size: size + 1, note: stranger.sign(size + 1, randomBytes(32)), code: 'CHECKPOINT_INVALID' },
      { size, note: h.hub.notary.sign(size, randomBytes(32)), code: 'LOG_FORKED' },
      { size: size + 5, note: h.hub.notary.sign(size + 5, randomBytes(32)), code: 'LOG_INCONSISTENT' },
    ];
    for (const [i, c] of cases.entries()) {
      await serve(c.note, c.size);
      await vi.waitFor(() => expect(h.node.witness?.status.failures).toBe(i + 1), { timeout: 20_000, interval: 100 });
      expect(h.node.witness?.status.lastProblem?.code).toBe(c.code);
      expect((await witnessed()).body).toBe(before);
    }
    const metrics = await (await request(`${h.node.url}/metrics`, { dispatcher: h.dispatcher })).body.text();
    expect(metrics).toContain('packtrust_evidence_checkpoints_refused{market="DE",node="de-1"} 3\n');
  });
});
