/**
 * `npm run bench:replication`: a real hub and a real verifier node.
 * - bootstrap: the node loads a market of 1,000,000 packs from the hub's snapshot (packs/s),
 *   against a raw LMDB batch write of the same packs, in the same (key) order, in the same run;
 * - lag: while the hub decides 10,000 pack events/s (supply, sent by another node of the market),
 *   the time from each decision's commit to the node having applied it (p50/p99).
 * Writes bench/results/replication.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBenchResults } from '../../common/src/bench.ts';
import { createLogger } from '../../common/src/log.ts';
import { Store } from '../../common/src/store.ts';
import { productJson, randomSerials, startTestHub } from '../../gateway/test/fixtures.ts';
import { DEFAULT_HUB_DEADLINE_MS } from '../src/config.ts';
import { HubClient } from '../src/hub-client.ts';
import { startVerifierNode } from '../src/service.ts';
import { startNodeProcess } from './node-process.ts';

const PACKS = Number(process.env.BENCH_PACKS ?? 1_000_000);
const EVENTS_PER_SECOND = Number(process.env.BENCH_EVENT_RATE ?? 10_000);
const EVENT_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PER_REQUEST = 100;
const CODE = '09506000134352';
const dir = mkdtempSync(join(tmpdir(), 'packtrust-bench-replication-'));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** The same packs written with plain puts, in the order the node receives them (the snapshot's key order). */
async function rawWrite(unordered: string[]): Promise<number> {
  const serials = [...unordered].sort();
  const store = Store.open({ path: join(dir, 'raw') });
  const db = store.db<{ b: string; s: string }, string>('packs');
  const t0 = performance.now();
  for (let i = 0; i < serials.length; i += 100_000) {
    await store.transaction(() => {
      for (const s of serials.slice(i, i + 100_000)) db.putSync(CODE + s, { b: 'B1', s: 'ACTIVE' });
    });
  }
  const ms = performance.now() - t0;
  await store.close();
  return ms;
}

/**
 * The bootstrap as deployed: `packtrust-verifier serve` in a process of its own (hub and node then
 * work on separate cores), timed by the node's own log line from the first snapshot byte to the
 * checkpoint's commit.
 */
async function bootstrapInOwnProcess(
  hubUrl: string,
  issuer: string,
  cred: { certPem: string; keyPem: string },
  caPem: string,
): Promise<number> {
  const node = startNodeProcess({
    dir,
    nodeId: 'bench-process',
    dataDir: join(dir, 'node-process'),
    hubUrl,
    issuer,
    ...cred,
    caPem,
  });
  try {
    return Number((await node.waitForLog(/"ms":(\d+),"msg":"replica bootstrapped from snapshot"/))[1]);
  } finally {
    await node.stop();
  }
}

async function main() {
  const logger = createLogger('bench', 'silent');
  const hub = await startTestHub();
  const up = hub.client(await hub.credential('manufacturer', 'ACME'));
  await hub.registerPrefix('ACME', '9506000');
  if ((await up.write('POST', '/v1/products', JSON.stringify(productJson(CODE, ['DE'])))).status !== 201)
    throw new Error('product');
  const serials = randomSerials(PACKS);
  for (let i = 0; i < PACKS; i += 1_000_000) {
    const res = await up.write(
      'POST',
      `/v1/products/${CODE}/batches/B${i}/packs?expiry=291200`,
      serials.slice(i, i + 1_000_000).join('\n'),
      { contentType: 'text/plain' },
    );
    if (res.status !== 201) throw new Error(`upload ${res.status}`);
  }
  const nodeCred = await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE', ip: ['127.0.0.1'] });
  const ownProcessMs = await bootstrapInOwnProcess(hub.hubUrl, hub.oauth.issuer, nodeCred, hub.t.ca.chainPem());
  const t0 = performance.now();
  const node = await startVerifierNode({
    market: 'DE',
    nodeId: 'bench',
    hubUrl: hub.hubUrl,
    issuer: hub.oauth.issuer,
    audience: 'urn:packtrust:verifier:DE',
    dataDir: join(dir, 'node'),
    host: '127.0.0.1',
    port: 0,
    certPem: nodeCred.certPem,
    keyPem: nodeCred.keyPem,
    caPem: hub.t.ca.chainPem(),
    feedWaitMs: 20_000,
    logger,
  });
  await node.replicator.waitFor(hub.store.feed('DE').last()!.seq, 600_000);
  const bootstrapMs = performance.now() - t0;
  const rawMs = await rawWrite(serials);

  // Lag: another node of the market sends supply events; this node follows the feed.
  const sender = new HubClient({
    deadlineMs: DEFAULT_HUB_DEADLINE_MS,
    hubUrl: hub.hubUrl,
    market: 'DE',
    certPem: nodeCred.certPem,
    keyPem: nodeCred.keyPem,
    caPem: hub.t.ca.chainPem(),
  });
  // The pharmacy whose token every event carries (the hub takes the actor from it).
  const token = await (await hub.pharmacy('DE', 'BENCH')).token();
  const commits: { seq: number; at: number }[] = [];
  const applied = new Map<number, number>();
  let watching = true;
  const watcher = (async () => {
    let last = node.replicator.status.appliedSeq;
    while (watching) {
      const now = node.replicator.status.appliedSeq;
      if (now !== last) {
        applied.set(now, performance.now());
        last = now;
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  const total = EVENTS_PER_SECOND * EVENT_SECONDS;
  const start = performance.now();
  let next = 0;
  const inflight: Promise<void>[] = [];
  for (let sent = 0; sent < total; sent += PER_REQUEST) {
    const due = start + (sent / EVENTS_PER_SECOND) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const events = serials.slice(next, next + PER_REQUEST).map((serial, k) => ({
      txId: `bench-${next + k}`,
      productCode: CODE,
      serial,
      op: 'supply' as const,
      at: Date.now(),
      token,
    }));
    next += PER_REQUEST;
    inflight.push(
      sender.sendEvents(events).then(() => {
        commits.push({ seq: hub.store.feed('DE').last()!.seq, at: performance.now() });
      }),
    );
  }
  await Promise.all(inflight);
  const achievedRate = total / ((performance.now() - start) / 1000);
  await node.replicator.waitFor(hub.store.feed('DE').last()!.seq, 60_000);
  watching = false;
  await watcher;
  const appliedTimes = [...applied.entries()].sort((a, b) => a[0] - b[0]);
  const lags = commits
    .map((c) => {
      const hit = appliedTimes.find(([seq]) => seq >= c.seq);
      return hit ? Math.max(0, hit[1] - c.at) : undefined;
    })
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);

  await sender.close();
  await node.close();
  await hub.close();
  const results = {
    bootstrap: {
      packs: PACKS,
      nodeInOwnProcess: { ms: ownProcessMs, packsPerSecond: PACKS / (ownProcessMs / 1000) },
      nodeInHubProcess: { ms: bootstrapMs, packsPerSecond: PACKS / (bootstrapMs / 1000) },
      targetPacksPerSecond: 500_000,
    },
    baselineRawLmdbWrite: { ms: rawMs, packsPerSecond: PACKS / (rawMs / 1000) },
    lag: {
      events: total,
      requestedRate: EVENTS_PER_SECOND,
      achievedRate,
      p50ms: pct(lags, 0.5),
      p99ms: pct(lags, 0.99),
      targetP99Ms: 100,
    },
    node: process.version,
  };
  console.log('\npacktrust replication benchmark');
  const rate = (ms: number) => (PACKS / (ms / 1000)).toFixed(0);
  console.log(
    `bootstrap of ${PACKS.toLocaleString('en')} packs, node in its own process   ${(ownProcessMs / 1000).toFixed(2)} s = ${rate(ownProcessMs)} packs/s   target >= 500000`,
  );
  console.log(
    `bootstrap, node in the hub's process (one core)  ${(bootstrapMs / 1000).toFixed(2)} s = ${rate(bootstrapMs)} packs/s`,
  );
  console.log(
    `baseline: raw LMDB write of the same packs      ${(rawMs / 1000).toFixed(2)} s = ${rate(rawMs)} packs/s   ratio ${(rawMs / ownProcessMs).toFixed(2)}`,
  );
  console.log(
    `lag at ${achievedRate.toFixed(0)} pack events/s (${total} events)   p50 ${results.lag.p50ms.toFixed(1)} ms  p99 ${results.lag.p99ms.toFixed(1)} ms   target p99 <= 100 ms`,
  );
  writeBenchResults('replication', results);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
