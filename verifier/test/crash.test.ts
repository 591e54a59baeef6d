import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Credential,
  productJson,
  randomSerials,
  startTestHub,
  type TestHub,
} from '../../gateway/test/fixtures.ts';
import { Replica } from '../src/replica.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'packtrust-crash-'));
const CODE = '09506000134352';
let hub: TestHub;
let dispatcher: Agent;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  hub = await startTestHub();
  const node: Credential = await hub.credential('verifier-node', 'NMVO-DE', undefined, {
    market: 'DE',
    ip: ['127.0.0.1'],
  });
  writeFileSync(join(dir, 'node.pem'), node.certPem);
  writeFileSync(join(dir, 'node.key'), node.keyPem);
  writeFileSync(join(dir, 'chain.pem'), hub.t.ca.chainPem());
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  env = {
    ...process.env,
    LOG_LEVEL: 'info',
    PACKTRUST_VERIFIER_MARKET: 'DE',
    PACKTRUST_VERIFIER_NODE_ID: 'de-crash',
    PACKTRUST_VERIFIER_HUB_URL: hub.hubUrl,
    PACKTRUST_VERIFIER_ISSUER: hub.oauth.issuer,
    PACKTRUST_VERIFIER_DATA_DIR: join(dir, 'node'),
    PACKTRUST_VERIFIER_PORT: '0',
    PACKTRUST_VERIFIER_CERT_FILE: join(dir, 'node.pem'),
    PACKTRUST_VERIFIER_KEY_FILE: join(dir, 'node.key'),
    PACKTRUST_VERIFIER_CA_CHAIN_FILE: join(dir, 'chain.pem'),
    PACKTRUST_VERIFIER_FEED_WAIT_MS: '500',
    // Small pages: many transactions, so the kill lands in the middle of applying the feed.
    PACKTRUST_VERIFIER_FEED_PAGE_SIZE: '2',
  };
}, 60_000);

afterAll(async () => {
  await dispatcher?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the node as its own process and resolves with its URL once it listens. */
function startNode(): Promise<{ child: ChildProcess; url: string }> {
  // The node itself, not the tsx wrapper: SIGKILL must reach the process that writes the replica.
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), join(ROOT, 'verifier/src/cli.ts'), 'serve'],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /"url":"(https:\/\/[^"]+)".*verifier listening/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => reject(new Error(`node exited ${code}: ${out}`)));
  });
}

async function appliedSeq(url: string): Promise<number> {
  const res = await request(`${url}/health`, { dispatcher });
  return ((await res.body.json()) as { appliedSeq: number }).appliedSeq;
}

describe('a node killed with SIGKILL while applying a large feed', () => {
  it('restarts and resumes from its checkpoint with no record lost or applied twice', async () => {
    const first = await startNode();
    // The feed starts with the hub's signing keys: the node bootstraps to there from the snapshot.
    const start = hub.store.feed('DE').last()!.seq;
    while ((await appliedSeq(first.url)) < start) await new Promise((r) => setTimeout(r, 5));
    expect(await appliedSeq(first.url)).toBe(start);
    // 300,000 packs arrive through the feed (30 records of 10,000), after the node has bootstrapped.
    const up = hub.client(await hub.credential('manufacturer', 'ACME'));
    await hub.registerPrefix('ACME', '9506000');
    expect((await up.write('POST', '/v1/products', JSON.stringify(productJson(CODE, ['DE'])))).status).toBe(201);
    for (const batch of ['B1', 'B2', 'B3']) {
      const res = await up.write(
        'POST',
        `/v1/products/${CODE}/batches/${batch}/packs?expiry=291200`,
        randomSerials(100_000).join('\n'),
        { contentType: 'text/plain' },
      );
      expect(res.status).toBe(201);
    }
    const target = hub.store.feed('DE').last()!.seq;
    // Kill as soon as the node has applied part of the feed.
    let seen = await appliedSeq(first.url);
    while (seen === start) {
      await new Promise((r) => setTimeout(r, 5));
      seen = await appliedSeq(first.url);
    }
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    expect(seen).toBeLessThan(target);

    const second = await startNode();
    try {
      const deadline = Date.now() + 60_000;
      while ((await appliedSeq(second.url)) < target && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(await appliedSeq(second.url)).toBe(target);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
    // Every pack of the hub, each once; the checkpoint names the hub's last record.
    const replica = new Replica(join(dir, 'node', 'replica'));
    try {
      const hubPacks = hub.store.packs.getCount({ start: CODE, end: `${CODE}\uffff` });
      expect(replica.packs.getCount()).toBe(hubPacks);
      expect(hubPacks).toBe(300_000);
      expect(replica.checkpoint()).toEqual({ seq: target, hash: hub.store.feed('DE').last()!.hash });
    } finally {
      await replica.close();
    }
  }, 120_000);
});
