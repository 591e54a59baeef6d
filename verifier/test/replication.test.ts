import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/src/log.ts';
import {
  type Credential,
  productJson,
  randomSerials,
  startTestHub,
  type TestHub,
} from '../../gateway/test/fixtures.ts';
import { DEFAULT_HUB_DEADLINE_MS } from '../src/config.ts';
import { HubClient } from '../src/hub-client.ts';
import { Replica } from '../src/replica.ts';
import { Replicator } from '../src/replication.ts';

let hub: TestHub;
let maker: Credential;
let node: Credential;
const dir = mkdtempSync(join(tmpdir(), 'packtrust-node-'));
const logger = createLogger('node-test', 'silent');

beforeAll(async () => {
  hub = await startTestHub();
  maker = await hub.credential('manufacturer', 'ACME');
  await hub.registerPrefix('ACME', '9506000');
  node = await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE' });
}, 60_000);
afterAll(async () => {
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

const upload = async (code: string, batch: string, serials: string[], markets = ['DE']) => {
  const c = hub.client(maker);
  if (!hub.store.products.get(code))
    expect((await c.write('POST', '/v1/products', JSON.stringify(productJson(code, markets)))).status).toBe(201);
  const res = await c.write('POST', `/v1/products/${code}/batches/${batch}/packs?expiry=291200`, serials.join('\n'), {
    contentType: 'text/plain',
  });
  expect(res.status).toBe(201);
};

function startNode(name: string) {
  const replica = new Replica(join(dir, name));
  const client = new HubClient({
    deadlineMs: DEFAULT_HUB_DEADLINE_MS,
    hubUrl: hub.hubUrl,
    market: 'DE',
    certPem: node.certPem,
    keyPem: node.keyPem,
    caPem: hub.t.ca.chainPem(),
  });
  const replicator = new Replicator(replica, client, logger, { pageSize: 50, waitMs: 500, retryMs: 100 });
  replicator.start();
  return {
    replica,
    replicator,
    async stop() {
      await replicator.stop();
      await client.close();
      await replica.close();
    },
  };
}

describe('replication', () => {
  it('bootstraps from the snapshot, then follows the feed', async () => {
    const first = randomSerials(20_000);
    await upload('09506000134352', 'B1', first);
    const n = startNode('a');
    try {
      await n.replicator.waitFor(hub.store.feed('DE').last()!.seq);
      expect(n.replicator.status.bootstraps).toBe(1);
      expect(n.replica.packs.get(`09506000134352${first[123]}`)).toEqual({ b: 'B1', s: 'ACTIVE' });
      const more = randomSerials(5000);
      await upload('09506000134352', 'B2', more);
      await n.replicator.waitFor(hub.store.feed('DE').last()!.seq);
      expect(n.replica.packs.get(`09506000134352${more[0]}`)).toEqual({ b: 'B2', s: 'ACTIVE' });
      expect(n.replica.batches.get('09506000134352|B2')).toMatchObject({ status: 'ACTIVE', expiryDate: '2029-12-31' });
      expect(n.replicator.status.bootstraps).toBe(1);
    } finally {
      await n.stop();
    }
  });

  it('resumes after a restart from its checkpoint, without a new bootstrap', async () => {
    const n = startNode('a');
    try {
      await n.replicator.waitFor(hub.store.feed('DE').last()!.seq);
      expect(n.replicator.status.bootstraps).toBe(0);
    } finally {
      await n.stop();
    }
  });

  it('stops serving and resynchronises when the chain does not link', async () => {
    const n = startNode('b');
    try {
      await n.replicator.waitFor(hub.store.feed('DE').last()!.seq);
      // Corrupt the checkpoint's hash, as a diverged replica would have it.
      await n.replica.store.transaction(() =>
        n.replica.setCheckpoint({ ...n.replica.checkpoint()!, hash: 'f'.repeat(64) }),
      );
      await upload('09506000134352', 'B3', randomSerials(100));
      const target = hub.store.feed('DE').last()!.seq;
      const deadline = Date.now() + 10_000;
      while (n.replicator.status.bootstraps < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(n.replicator.status.lastError).toMatch(/does not link/);
      await n.replicator.waitFor(target);
      expect(n.replicator.status.bootstraps).toBe(2);
      expect(n.replica.batches.get('09506000134352|B3')).toBeDefined();
    } finally {
      await n.stop();
    }
  });

  it('ignores other markets', async () => {
    await upload('09506000134369', 'F1', randomSerials(100), ['FR']);
    const n = startNode('c');
    try {
      await n.replicator.waitFor(hub.store.feed('DE').last()!.seq);
      expect(n.replica.products.get('09506000134369')).toBeUndefined();
    } finally {
      await n.stop();
    }
  });
});
