/**
 * Bulk state changes at a verifier node (issue 14), a node as deployed (its own process) in front
 * of a real hub:
 * - a synchronous bulk supply of 1,000 packs (one page to the hub);
 * - a bulk supply of 9,900 packs, answered 202 as a job, timed until the job is done;
 * - the same packs one request at a time (500 of them, as the node worked before), per pack.
 * Baseline in the same run: the hub deciding the same number of events sent straight to it, in
 * pages of 1,000 by a client of its own (what a node cannot go below); the ratio is baseline time
 * over the node's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { writeBenchResults } from '../../common/src/bench.ts';
import { startTestHub } from '../../gateway/test/fixtures.ts';
import { HubClient } from '../src/hub-client.ts';
import { EVENTS_PER_PAGE } from '../src/state-changes.ts';
import { startNodeProcess } from './node-process.ts';

const CODE = '09506000134352';
const JOB_PACKS = 9_900;
const SYNC_PACKS = 1_000;
const SINGLES = 500;
const dir = mkdtempSync(join(tmpdir(), 'packtrust-bench-bulk-'));

async function main() {
  const hub = await startTestHub({
    perClient: { ratePerSecond: 1e6, burst: 1e6 },
    perAddress: { ratePerSecond: 1e6, burst: 1e6 },
  });
  const serials = await hub.seedProduct(CODE, ['DE'], 2 * JOB_PACKS + SYNC_PACKS + SINGLES);
  const nodeCred = await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE', ip: ['127.0.0.1'] });
  const nodeProcess = startNodeProcess({
    dir,
    nodeId: 'bench-bulk',
    dataDir: join(dir, 'node'),
    hubUrl: hub.hubUrl,
    issuer: hub.oauth.issuer,
    certPem: nodeCred.certPem,
    keyPem: nodeCred.keyPem,
    caPem: hub.t.ca.chainPem(),
  });
  const dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  try {
    const nodeUrl = (await nodeProcess.waitForLog(/"url":"(https:\/\/[^"]+)".*verifier listening/))[1]!;
    const feedSeq = hub.store.feed('DE').last()!.seq;
    for (;;) {
      const health = (await (await request(`${nodeUrl}/health`, { dispatcher })).body.json()) as { appliedSeq: number };
      if (health.appliedSeq >= feedSeq) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const pharmacy = await hub.pharmacy('DE', 'APO-BULK');
    const token = await pharmacy.token();
    const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await request(`${nodeUrl}${path}`, {
        method,
        dispatcher,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
    };
    const packs = (list: string[], prefix: string) =>
      list.map((serial, i) => ({ txId: `${prefix}-${i}`, productCode: CODE, serial, batch: 'B1', expiry: '291200' }));
    const unused = [...serials];
    const take = (n: number) => unused.splice(0, n);

    // A synchronous bulk of one page.
    let t = performance.now();
    const sync = await call('POST', '/v1/packs/supply/bulk', { packs: packs(take(SYNC_PACKS), 'sync') });
    const syncMs = performance.now() - t;
    const syncAccepted = (sync.json.results as { outcome: string }[]).filter((r) => r.outcome === 'accepted').length;
    if (sync.status !== 200 || syncAccepted !== SYNC_PACKS)
      throw new Error(`sync bulk: ${sync.status} ${syncAccepted}`);

    // A job of 9,900 packs, polled every 50 ms until done.
    t = performance.now();
    const queued = await call('POST', '/v1/packs/supply/bulk', { packs: packs(take(JOB_PACKS), 'job') });
    const answeredMs = performance.now() - t;
    if (queued.status !== 202) throw new Error(`job: ${queued.status}`);
    let job: Record<string, unknown>;
    for (;;) {
      job = (await call('GET', `/v1/jobs/${queued.json.jobId}`)).json;
      if (job.status === 'done') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const jobMs = performance.now() - t;
    const counts = job.counts as Record<string, number>;
    if (counts.accepted !== JOB_PACKS) throw new Error(`job counts ${JSON.stringify(counts)}`);

    // One pack per request, as before bulk pages.
    const singles = take(SINGLES);
    t = performance.now();
    for (const [i, serial] of singles.entries()) {
      const r = await call('POST', '/v1/packs/supply', packs([serial], `single-${i}`)[0]);
      if (r.json.outcome !== 'accepted') throw new Error(`single supply: ${JSON.stringify(r.json)}`);
    }
    const singleMsPerPack = (performance.now() - t) / SINGLES;

    // Baseline: the hub deciding as many events, sent straight to it in pages by a client of its own.
    const baselineCred = await hub.credential('verifier-node', 'NMVO-DE', undefined, {
      market: 'DE',
      ip: ['127.0.0.1'],
    });
    const client = new HubClient({
      deadlineMs: 60_000,
      hubUrl: hub.hubUrl,
      market: 'DE',
      certPem: baselineCred.certPem,
      keyPem: baselineCred.keyPem,
      caPem: hub.t.ca.chainPem(),
    });
    const direct = take(JOB_PACKS);
    const at = Date.now();
    t = performance.now();
    for (let i = 0; i < direct.length; i += EVENTS_PER_PAGE) {
      const page = direct.slice(i, i + EVENTS_PER_PAGE).map((serial, j) => ({
        txId: `direct-${i + j}`,
        productCode: CODE,
        serial,
        op: 'supply' as const,
        at,
        token,
      }));
      const results = await client.sendEvents(page);
      if (!results.every((r) => r.accepted)) throw new Error('baseline events refused');
    }
    const baselineMs = performance.now() - t;
    await client.close();

    const results = {
      syncBulk: { packs: SYNC_PACKS, ms: syncMs, packsPerSecond: SYNC_PACKS / (syncMs / 1000) },
      job: {
        packs: JOB_PACKS,
        answeredMs,
        doneMs: jobMs,
        packsPerSecond: JOB_PACKS / (jobMs / 1000),
        before: { packs: 9_900, ms: 154_000, note: 'issue 14: 2 min 34 s in one request' },
      },
      onePackPerRequest: { packs: SINGLES, msPerPack: singleMsPerPack, extrapolatedJobMs: singleMsPerPack * JOB_PACKS },
      baseline: { what: 'hub deciding the events sent straight to it in pages', packs: JOB_PACKS, ms: baselineMs },
      ratioToBaseline: baselineMs / jobMs,
      node: process.version,
    };
    console.log('\npacktrust bulk state changes benchmark (node in its own process, real hub)');
    console.log('what                                                  packs        ms     packs/s');
    const row = (what: string, n: number, ms: number) =>
      console.log(
        `${what.padEnd(52)} ${String(n).padStart(6)} ${ms.toFixed(0).padStart(9)} ${(n / (ms / 1000)).toFixed(0).padStart(11)}`,
      );
    row('bulk supply, answered at once (one page)', SYNC_PACKS, syncMs);
    row('bulk supply as a job, until done', JOB_PACKS, jobMs);
    console.log(`  (202 with the job id after ${answeredMs.toFixed(0)} ms; before this change: 154,000 ms)`);
    row('one pack per request', SINGLES, singleMsPerPack * SINGLES);
    row('baseline: hub decides them, sent straight in pages', JOB_PACKS, baselineMs);
    console.log(`job throughput / baseline throughput: ${(baselineMs / jobMs).toFixed(2)}`);
    writeBenchResults('bulk', results);
  } finally {
    await dispatcher.close();
    await nodeProcess.stop();
    await hub.close();
  }
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
