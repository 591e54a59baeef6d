/**
 * `npm run bench:verify`: a verifier node (its own process) with 10,000,000 packs in its replica,
 * a real hub and OAuth provider for the tokens.
 * - in-process pack lookup p50/p99 (the verification function over the LMDB replica) against a raw LMDB get;
 * - HTTP verify with JWT auth, keep-alive TLS over loopback, against a bare fastify route returning a
 *   constant on the same kind of listener (throughput ratio), then p99 at half the node's throughput;
 * - bulk verify of 10,000 packs, against 10,000 raw LMDB gets;
 * - a single supply through the hub (p50/p99), against a single verify on the same connection;
 * - signed answers (Accept-Signature) against unsigned ones, the same load on the same node, one after the other;
 * - heap and RSS of the node process.
 * The replica is filled with the node's own feed-apply code (records of 10,000 packs), not through
 * the hub, to keep the run short. Writes bench/results/verify.json.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { writeBenchResults } from '../../common/src/bench.ts';
import { gs1CheckDigit } from '../../common/src/gs1.ts';
import { createHttpServer, listen } from '../../common/src/http.ts';
import { createLogger } from '../../common/src/log.ts';
import { productJson, randomSerials, startTestHub } from '../../gateway/test/fixtures.ts';
import { Replica } from '../src/replica.ts';
import { memoised, verifyPack } from '../src/verification.ts';
import { startNodeProcess } from './node-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKS = Number(process.env.BENCH_PACKS ?? 10_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 16;
const SUPPLIES = Number(process.env.BENCH_SUPPLIES ?? 2000);
const CODE = '09506000134352';
const dir = mkdtempSync(join(tmpdir(), 'packtrust-bench-verify-'));
const serial = (i: number) => createHash('sha1').update(String(i)).digest('base64url').slice(0, 12);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

async function fillReplica(path: string): Promise<number> {
  const replica = new Replica(path);
  const t0 = performance.now();
  const created = new Date().toISOString();
  await replica.store.transaction(() => {
    replica.applyBody({
      type: 'product',
      product: {
        productCode: CODE,
        name: 'Bench',
        commonName: 'bench',
        form: 'tablet',
        strength: '1 mg',
        packSize: 10,
        markets: ['DE'],
        status: 'ACTIVE',
        owner: 'ACME',
        createdAt: created,
        updatedAt: created,
      },
      evidenceSeq: 1,
    });
    replica.applyBody({
      type: 'batch',
      batch: {
        productCode: CODE,
        batch: 'B1',
        expiry: '291200',
        expiryDate: '2029-12-31',
        status: 'ACTIVE',
        packCount: PACKS,
        owner: 'ACME',
        createdAt: created,
        updatedAt: created,
      },
      evidenceSeq: 2,
    });
  });
  for (let start = 0; start < PACKS; start += 100_000) {
    const end = Math.min(PACKS, start + 100_000);
    await replica.store.transaction(() => {
      for (let r = start; r < end; r += 10_000) {
        const serials = Array.from({ length: Math.min(10_000, end - r) }, (_, k) => serial(r + k));
        replica.applyBody({
          type: 'packs',
          productCode: CODE,
          batch: 'B1',
          count: serials.length,
          serials: serials.join('\n'),
          evidenceSeq: 3,
        });
      }
    });
  }
  await replica.store.transaction(() => replica.setCheckpoint({ seq: 0, hash: '' }));
  await replica.close();
  return performance.now() - t0;
}

async function lookupLatencies(path: string) {
  const replica = new Replica(path);
  // The node's own lookup: the replica's verbs.
  const lookup = replica;
  const keys = Array.from({ length: 200_000 }, () => serial(Math.floor(Math.random() * PACKS)));
  for (let i = 0; i < 20_000; i++)
    verifyPack({ productCode: CODE, serial: keys[i]!, batch: 'B1', expiry: '291200' }, lookup, '2026-11-22');
  const verifyTimes: number[] = [];
  const rawTimes: number[] = [];
  for (const k of keys) {
    let t = process.hrtime.bigint();
    replica.packs.get(CODE + k);
    rawTimes.push(Number(process.hrtime.bigint() - t) / 1000);
    t = process.hrtime.bigint();
    const v = verifyPack({ productCode: CODE, serial: k, batch: 'B1', expiry: '291200' }, lookup, '2026-11-22');
    verifyTimes.push(Number(process.hrtime.bigint() - t) / 1000);
    if (v.returnCode !== 'ACTIVE') throw new Error(`unexpected ${v.returnCode}`);
  }
  // A bulk request's packs, not read before: the lookups the node does for one verify-bulk.
  const bulkKeys = Array.from({ length: 10_000 }, () => serial(Math.floor(Math.random() * PACKS)));
  const t = performance.now();
  const view = memoised(lookup);
  for (const k of bulkKeys)
    verifyPack({ productCode: CODE, serial: k, batch: 'B1', expiry: '291200' }, view, '2026-11-22');
  const bulkInProcessMs = performance.now() - t;
  // Baseline: 10,000 raw LMDB gets of other packs not read before.
  const rawKeys = Array.from({ length: 10_000 }, () => CODE + serial(Math.floor(Math.random() * PACKS)));
  const tr = performance.now();
  for (const k of rawKeys) replica.packs.get(k);
  const bulkRawGetsMs = performance.now() - tr;
  verifyTimes.sort((a, b) => a - b);
  rawTimes.sort((a, b) => a - b);
  // Closed before the node starts: a reader left open in this process would keep the node from
  // reusing the pages its writes free.
  await replica.close();
  return {
    verifyUs: { p50: pct(verifyTimes, 0.5), p99: pct(verifyTimes, 0.99) },
    rawGetUs: { p50: pct(rawTimes, 0.5), p99: pct(rawTimes, 0.99) },
    bulkInProcessMs,
    bulkRawGetsMs,
  };
}

async function load(
  url: string,
  bodyFile: string,
  token: string,
  caFile: string,
  rate?: number,
  connections = CONNECTIONS,
  acceptSignature?: string,
) {
  const args = [
    join(ROOT, 'verifier/bench/verify-load.ts'),
    url,
    bodyFile,
    token,
    caFile,
    String(connections),
    String(SECONDS),
    String(rate ?? 0),
    ...(acceptSignature ? [acceptSignature] : []),
  ];
  const { stdout } = await promisify(execFile)(join(ROOT, 'node_modules/.bin/tsx'), args);
  return JSON.parse(stdout) as { count: number; errors: number; perSecond: number; p50ms: number; p99ms: number };
}

async function nodeHealth(url: string, dispatcher: Agent): Promise<{ appliedSeq: number }> {
  return (await (await request(`${url}/health`, { dispatcher })).body.json()) as { appliedSeq: number };
}

async function main() {
  const logger = createLogger('bench', 'silent');
  // BENCH_NODE_DIR reuses a node directory a previous run filled (filling 10M packs takes minutes).
  const nodeDir = process.env.BENCH_NODE_DIR ?? join(dir, 'node');
  const existing = new Replica(join(nodeDir, 'replica'));
  const present = (existing.packs.getStats() as { entryCount: number }).entryCount;
  await existing.close();
  if (present >= PACKS) {
    // A previous run's node followed another hub's feed: start this one's from the beginning.
    const replica = new Replica(join(nodeDir, 'replica'));
    await replica.store.transaction(() => replica.setCheckpoint({ seq: 0, hash: '' }));
    await replica.close();
    console.log(`reusing the replica in ${nodeDir} (${present.toLocaleString('en')} packs)`);
  } else {
    const fillMs = await fillReplica(join(nodeDir, 'replica'));
    console.log(`replica filled with ${PACKS.toLocaleString('en')} packs in ${(fillMs / 1000).toFixed(1)} s`);
  }
  const inProcess = await lookupLatencies(join(nodeDir, 'replica'));

  const hub = await startTestHub({
    perClient: { ratePerSecond: 1e6, burst: 1e6 },
    perAddress: { ratePerSecond: 1e6, burst: 1e6 },
  });
  const nodeCred = await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE', ip: ['127.0.0.1'] });
  const nodeProcess = startNodeProcess({
    dir,
    nodeId: 'bench',
    dataDir: nodeDir,
    hubUrl: hub.hubUrl,
    issuer: hub.oauth.issuer,
    certPem: nodeCred.certPem,
    keyPem: nodeCred.keyPem,
    caPem: hub.t.ca.chainPem(),
  });
  const caFile = nodeProcess.caFile;
  const nodeUrl = (await nodeProcess.waitForLog(/"url":"(https:\/\/[^"]+)".*verifier listening/))[1]!;
  try {
    const token = await (await hub.pharmacy('DE', 'APO-1')).token();
    const bodyFile = join(dir, 'verify.json');
    writeFileSync(
      bodyFile,
      JSON.stringify({ productCode: CODE, serial: serial(12345), batch: 'B1', expiry: '291200' }),
    );

    const node = await load(`${nodeUrl}/v1/packs/verify`, bodyFile, token, caFile);
    const bare = createHttpServer({ logger, tls: { key: nodeCred.keyPem, cert: nodeCred.certPem } });
    bare.post('/v1/packs/verify', async () => ({
      returnCode: 'ACTIVE',
      state: 'ACTIVE',
      detail: 'constant',
      productCode: CODE,
      serial: 'x',
    }));
    const bareUrl = await listen(bare, '127.0.0.1', 0);
    const baseline = await load(`${bareUrl}/v1/packs/verify`, bodyFile, token, caFile);
    // Half the throughput, paced, over fewer connections (a pharmacy system's pool, not a flood);
    // the bare route at the same rate is the floor of this machine.
    const halfRate = Math.floor(node.perSecond / 2);
    const half = await load(`${nodeUrl}/v1/packs/verify`, bodyFile, token, caFile, halfRate, 4);
    const bareHalf = await load(`${bareUrl}/v1/packs/verify`, bodyFile, token, caFile, halfRate, 4);
    await bare.close();
    // Signed answers cost an ECDSA signature and a SHA-512 digest each: the same load, unsigned then signed.
    const ask = 'answer=("@status" "content-digest" "@method";req "@path";req);created';
    const unsigned = await load(`${nodeUrl}/v1/packs/verify`, bodyFile, token, caFile);
    const signed = await load(`${nodeUrl}/v1/packs/verify`, bodyFile, token, caFile, undefined, CONNECTIONS, ask);

    const dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
    // Each request names 10,000 other packs, spread over the whole replica.
    const bulkBody = (round: number) =>
      JSON.stringify({
        packs: Array.from({ length: 10_000 }, (_, i) => ({
          productCode: CODE,
          serial: serial(((round * 10_000 + i) * 97) % PACKS),
          batch: 'B1',
          expiry: '291200',
        })),
      });
    const bulkTimes: number[] = [];
    for (let i = 0; i < 11; i++) {
      const body = bulkBody(i);
      const t = performance.now();
      const res = await request(`${nodeUrl}/v1/packs/verify-bulk`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body,
      });
      const json = (await res.body.json()) as { results: unknown[] };
      if (json.results.length !== 10_000) throw new Error('bulk verify failed');
      if (i > 0) bulkTimes.push(performance.now() - t);
    }
    bulkTimes.sort((a, b) => a - b);

    // A single state change: supply at the node, decided by the hub (durable commit), one at a
    // time on one connection; a single verify on the same connection is the baseline.
    const maker = await hub.credential('manufacturer', 'ACME');
    await hub.registerPrefix('ACME', '9506000');
    const up = hub.client(maker);
    const supplyCode = `0950600013437${gs1CheckDigit('0950600013437')}`;
    const supplySerials = randomSerials(SUPPLIES + 1);
    await up.write('POST', '/v1/products', JSON.stringify(productJson(supplyCode, ['DE'])));
    const uploaded = await up.write(
      'POST',
      `/v1/products/${supplyCode}/batches/S1/packs?expiry=291200`,
      supplySerials.join('\n'),
      { contentType: 'text/plain' },
    );
    up.close();
    if (uploaded.status !== 201) throw new Error(`supply batch upload ${uploaded.status}`);
    const feedSeq = hub.store.feed('DE').last()!.seq;
    for (let i = 0; (await nodeHealth(nodeUrl, dispatcher)).appliedSeq < feedSeq; i++) {
      if (i > 200) throw new Error('the node did not receive the supply batch');
      await new Promise((r) => setTimeout(r, 50));
    }
    const post = async (path: string, body: unknown) => {
      const t = performance.now();
      const res = await request(`${nodeUrl}${path}`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      const json = (await res.body.json()) as { outcome?: string; returnCode?: string };
      return { ms: performance.now() - t, json };
    };
    const supplyTimes: number[] = [];
    const verifyTimes: number[] = [];
    for (let i = 0; i < SUPPLIES; i++) {
      const pack = { productCode: supplyCode, serial: supplySerials[i]!, batch: 'S1', expiry: '291200' };
      const v = await post('/v1/packs/verify', pack);
      if (v.json.returnCode !== 'ACTIVE') throw new Error(`verify before supply: ${JSON.stringify(v.json)}`);
      verifyTimes.push(v.ms);
      const r = await post('/v1/packs/supply', { txId: `bench-supply-${i}`, ...pack });
      if (r.json.outcome !== 'accepted') throw new Error(`supply: ${JSON.stringify(r.json)}`);
      supplyTimes.push(r.ms);
    }
    supplyTimes.sort((a, b) => a - b);
    verifyTimes.sort((a, b) => a - b);

    const metrics = await (await request(`${nodeUrl}/metrics`, { dispatcher })).body.text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0) / 2 ** 20;
    await dispatcher.close();

    const results = {
      packs: PACKS,
      inProcess: { ...inProcess, targetP99Us: 5 },
      http: {
        node,
        bareFastify: baseline,
        ratio: node.perSecond / baseline.perSecond,
        targetRatio: 0.7,
        atHalfLoad: half,
        bareFastifyAtHalfLoad: bareHalf,
        targetP99Ms: 1,
      },
      signedAnswers: { unsigned, signed, throughputRatio: signed.perSecond / unsigned.perSecond },
      supply: {
        count: SUPPLIES,
        p50ms: pct(supplyTimes, 0.5),
        p99ms: pct(supplyTimes, 0.99),
        verifyBaseline: { p50ms: pct(verifyTimes, 0.5), p99ms: pct(verifyTimes, 0.99) },
        targetP99Ms: 5,
      },
      bulk10k: {
        httpMedianMs: pct(bulkTimes, 0.5),
        inProcessMs: inProcess.bulkInProcessMs,
        rawLmdbGetsMs: inProcess.bulkRawGetsMs,
        targetMs: 20,
      },
      nodeMemoryMB: {
        heapUsed: metric('nodejs_heap_used_bytes'),
        rss: metric('process_resident_memory_bytes'),
        targetHeap: 150,
      },
      node: process.version,
    };
    console.log(`\npacktrust verify benchmark, ${PACKS.toLocaleString('en')} packs in the replica`);
    console.log(
      `in-process verification      p50 ${inProcess.verifyUs.p50.toFixed(2)} µs  p99 ${inProcess.verifyUs.p99.toFixed(2)} µs   (raw LMDB get p50 ${inProcess.rawGetUs.p50.toFixed(2)} µs p99 ${inProcess.rawGetUs.p99.toFixed(2)} µs)   target p99 <= 5 µs`,
    );
    console.log(
      `HTTP verify, JWT, TLS, ${CONNECTIONS} conns  ${node.perSecond.toFixed(0)} req/s  p50 ${node.p50ms.toFixed(2)} ms  p99 ${node.p99ms.toFixed(2)} ms  errors ${node.errors}`,
    );
    console.log(
      `bare fastify route, same      ${baseline.perSecond.toFixed(0)} req/s  p50 ${baseline.p50ms.toFixed(2)} ms  p99 ${baseline.p99ms.toFixed(2)} ms   ratio ${(node.perSecond / baseline.perSecond).toFixed(2)} (target >= 0.70)`,
    );
    console.log(
      `at half load (${halfRate} req/s)     p50 ${half.p50ms.toFixed(2)} ms  p99 ${half.p99ms.toFixed(2)} ms   (bare route at that rate: p50 ${bareHalf.p50ms.toFixed(2)} ms p99 ${bareHalf.p99ms.toFixed(2)} ms)   errors ${half.errors}   target p99 <= 1 ms`,
    );
    console.log(
      `signed answers (Accept-Signature)  ${signed.perSecond.toFixed(0)} req/s  p50 ${signed.p50ms.toFixed(2)} ms  p99 ${signed.p99ms.toFixed(2)} ms   unsigned, same run: ${unsigned.perSecond.toFixed(0)} req/s  p50 ${unsigned.p50ms.toFixed(2)} ms  p99 ${unsigned.p99ms.toFixed(2)} ms   throughput ratio ${(signed.perSecond / unsigned.perSecond).toFixed(2)}, p50 ratio ${(signed.p50ms / unsigned.p50ms).toFixed(2)}, p99 ratio ${(signed.p99ms / unsigned.p99ms).toFixed(2)}   errors ${signed.errors}`,
    );
    console.log(
      `bulk verify of 10,000 packs   HTTP median ${pct(bulkTimes, 0.5).toFixed(1)} ms, in process ${inProcess.bulkInProcessMs.toFixed(1)} ms (10,000 raw LMDB gets ${inProcess.bulkRawGetsMs.toFixed(1)} ms, ratio ${(inProcess.bulkInProcessMs / inProcess.bulkRawGetsMs).toFixed(2)})   target <= 20 ms`,
    );
    console.log(
      `supply through the hub, one at a time (${SUPPLIES})  p50 ${results.supply.p50ms.toFixed(2)} ms  p99 ${results.supply.p99ms.toFixed(2)} ms   (single verify, same connection: p50 ${results.supply.verifyBaseline.p50ms.toFixed(2)} ms p99 ${results.supply.verifyBaseline.p99ms.toFixed(2)} ms)   target p99 <= 5 ms`,
    );
    console.log(
      `node process memory           heap ${results.nodeMemoryMB.heapUsed.toFixed(0)} MiB, RSS ${results.nodeMemoryMB.rss.toFixed(0)} MiB   target heap <= 150 MiB`,
    );
    writeBenchResults('verify', results);
  } finally {
    await nodeProcess.stop();
    await hub.close();
  }
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
