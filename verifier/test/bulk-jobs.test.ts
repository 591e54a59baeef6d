import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../gateway/src/oauth/clients.ts';
import { EVENTS_PER_PAGE } from '../src/state-changes.ts';
import { CODE, FreezableRelay, type NodeHarness, startNodeHarness, startTestNode, until } from './fixtures.ts';

/**
 * Bulk state changes at real volumes (issue 14): checked here, then sent to the hub in pages of
 * 1,000 events, one signed request per page; large requests as jobs that survive a restart. A real
 * hub and node; the node reaches the hub through a relay that can freeze, as a hung hub would.
 */

const SYNC_MAX = 2500;
let h: NodeHarness;
let relay: FreezableRelay;
/** Serials not used by an earlier test yet. */
let unused: string[];

const take = (n: number) => unused.splice(0, n);
const packs = (serials: string[], prefix: string) =>
  serials.map((serial, i) => ({ txId: `${prefix}-${i}`, productCode: CODE, serial, batch: 'B1', expiry: '291200' }));
type Job = {
  jobId: string;
  status: string;
  total: number;
  decided: number;
  counts?: Record<string, number>;
  results?: { txId: string; outcome: string; code: string; serial: string }[];
};
const job = async (id: string, bearer?: string) =>
  (await h.call(`/v1/jobs/${id}`, undefined, bearer)) as { status: number; json: Job };
const hubRequests = () => h.hub.store.evidence.lastSeq();

beforeAll(async () => {
  h = await startNodeHarness({
    name: 'bulk-jobs',
    seed: 8000,
    node: async (hub) => {
      relay = new FreezableRelay(Number(new URL(hub.hubUrl).port));
      const url = `https://127.0.0.1:${await relay.listen()}`;
      hub.publishAt(url);
      return { hubUrl: url, bulkSyncMaxPacks: SYNC_MAX, hubDeadlineMs: 1500 };
    },
  });
  unused = [...h.serials];
}, 120_000);

afterAll(async () => {
  await h?.close();
  await relay?.close();
});

describe('bulk state changes', () => {
  it('sends the hub one signed request per page of 1,000 events, and answers each pack in order', async () => {
    const serials = take(SYNC_MAX);
    const before = hubRequests();
    const res = await h.call('/v1/packs/supply/bulk', { packs: packs(serials, 'sync') });
    expect(res.status).toBe(200);
    const results = res.json.results as { txId: string; outcome: string; serial: string }[];
    expect(results.map((r) => r.serial)).toEqual(serials);
    expect(results.every((r) => r.outcome === 'accepted')).toBe(true);
    // 2,500 events: three signed requests (each kept as evidence at the hub), not 2,500.
    expect(hubRequests() - before).toBe(Math.ceil(SYNC_MAX / EVENTS_PER_PAGE));
    for (const s of [serials[0]!, serials[1234]!, serials.at(-1)!]) {
      expect(h.hub.store.pack(CODE, s)).toMatchObject({ s: 'SUPPLIED' });
    }
    // A transaction id repeated: the recorded answer, decided once.
    const again = await h.call('/v1/packs/supply/bulk', { packs: packs(serials.slice(0, 3), 'sync') });
    expect((again.json.results as { code: string }[]).map((r) => r.code)).toEqual(['CHANGED', 'CHANGED', 'CHANGED']);
    expect(hubRequests() - before).toBe(3);
  }, 120_000);

  it('answers a larger request 202 with a job that reports progress and, once done, every result', async () => {
    const serials = take(3000);
    const res = await h.send('/v1/packs/destroy/bulk', { body: { packs: packs(serials, 'job') } });
    expect(res.status).toBe(202);
    const queued = JSON.parse(res.body.toString()) as Job;
    expect(res.headers.location).toBe(`/v1/jobs/${queued.jobId}`);
    expect(queued).toMatchObject({ status: 'queued', total: 3000, decided: 0 });
    const seen: number[] = [];
    await until('the job to finish', async () => {
      const { json } = await job(queued.jobId);
      seen.push(json.decided);
      return json.status === 'done';
    });
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const done = (await job(queued.jobId)).json;
    expect(done).toMatchObject({
      status: 'done',
      total: 3000,
      decided: 3000,
      counts: { accepted: 3000, refused: 0, pending: 0 },
    });
    expect(done.results!.map((r) => r.txId)).toEqual(serials.map((_, i) => `job-${i}`));
    expect(h.hub.store.pack(CODE, serials[2999]!)).toMatchObject({ s: 'DESTROYED' });
    expect((await h.call('/health', undefined, '')).json).toMatchObject({ bulkJobsUnfinished: 0 });
    expect((await h.send('/metrics', { bearer: '' })).body.toString()).toMatch(
      /^packtrust_bulk_jobs_unfinished\{[^}]*\} 0$/m,
    );

    // Another client of the market does not see it.
    const other = await h.hub.pharmacy('DE', 'DE-APO-2');
    expect(await job(queued.jobId, await other.token())).toMatchObject({
      status: 404,
      json: { code: 'NODE_JOB_UNKNOWN' },
    });
  }, 120_000);

  it('makes any request a job when asked with Prefer: respond-async', async () => {
    const res = await h.send('/v1/packs/supply/bulk', {
      body: { packs: packs(take(3), 'prefer') },
      headers: { prefer: 'respond-async' },
    });
    expect(res.status).toBe(202);
    expect(res.headers['preference-applied']).toBe('respond-async');
  });

  it("keeps jobs through a restart; decides them only from a served replica; refuses a disabled client's queued job", async () => {
    const serials = take(1000);
    const rogue = await h.hub.pharmacy('DE', 'DE-APO-ROGUE');
    const rogueToken = await rogue.token();
    const rogueSerials = take(300);
    relay.freeze();
    // Job 1 (the harness's pharmacy) holds the node's one worker: its first page waits for the hung hub.
    const first = await h.send('/v1/packs/supply/bulk', {
      body: { packs: [...packs(serials, 'restart'), ...packs(['INVENTED-SERIAL-1'], 'restart-unknown')] },
      headers: { prefer: 'respond-async' },
    });
    expect(first.status).toBe(202);
    const job1 = (JSON.parse(first.body.toString()) as Job).jobId;
    await until('the first page to reach the relay', () => relay.holding > 0);
    // Job 2, of another client, waits behind it.
    const second = await h.send('/v1/packs/destroy/bulk', {
      body: { packs: packs(rogueSerials, 'rogue') },
      headers: { prefer: 'respond-async' },
      bearer: rogueToken,
    });
    expect(second.status).toBe(202);
    const job2 = (JSON.parse(second.body.toString()) as Job).jobId;
    await h.node.close();

    // While the node is down: onboarding staff disable the second client, and the node's replica
    // is lost (an operator deletes it to resynchronise, or a crash in the middle of a bootstrap).
    await new ClientRegistry(h.hub.store).disable(rogue.clientId);
    rmSync(join(h.dir, 'de-1', 'replica'), { recursive: true, force: true });
    h.node = await startTestNode(
      h.hub,
      'DE',
      'de-1',
      h.dir,
      { hubUrl: `https://127.0.0.1:${port(relay)}`, hubDeadlineMs: 1500, bulkSyncMaxPacks: SYNC_MAX },
      h.nodeCred,
    );
    // The hub is still hung: the empty replica cannot load, and no job is decided from it.
    expect(h.node.replicator.serving).toBe(false);
    expect(h.node.bulkJobs.get(h.pharmacy.clientId, job1)!.status).not.toBe('done');
    relay.thaw();
    await until('job 1 to finish', () => h.node.bulkJobs.get(h.pharmacy.clientId, job1)?.status === 'done', 90_000);
    await until(
      "every pack of job 1 decided by the hub (pending ones through the node's outbox)",
      () => h.node.bulkJobs.get(h.pharmacy.clientId, job1)?.counts?.accepted === 1000,
      90_000,
    );
    const done1 = h.node.bulkJobs.get(h.pharmacy.clientId, job1)!;
    expect(done1.results!.filter((r) => r.code === 'PRODUCT_UNKNOWN' || r.code === 'SERIAL_UNKNOWN')).toHaveLength(1);
    for (const s of serials) expect(h.hub.store.pack(CODE, s)?.s).toBe('SUPPLIED');
    const decisions = [...h.hub.store.feed('DE').entries()].filter(
      (e) => e.body.type === 'pack-state' && serials.includes(e.body.serial),
    );
    expect(decisions).toHaveLength(1000);
    // The unknown serial's alert is dated at the request, which the token covered, and reaches the hub.
    await until('the alert at the hub', () =>
      h.hub.alertsOf('ACME').some((a) => a.pack.serial === 'INVENTED-SERIAL-1'),
    );
    const alert = h.hub.alertsOf('ACME').find((a) => a.pack.serial === 'INVENTED-SERIAL-1')!;
    expect(Date.parse(alert.raisedAt)).toBe(Date.parse(done1.createdAt));

    // The disabled client's job is not sent: every pack refused, none destroyed.
    await until('job 2 to finish', () => h.node.bulkJobs.get(rogue.clientId, job2)?.status === 'done', 60_000);
    const done2 = h.node.bulkJobs.get(rogue.clientId, job2)!;
    expect(done2.counts).toEqual({ accepted: 0, refused: 300, pending: 0 });
    expect(new Set(done2.results!.map((r) => r.code))).toEqual(new Set(['CLIENT_DISABLED']));
    for (const s of rogueSerials) expect(h.hub.store.pack(CODE, s)?.s).toBe('ACTIVE');
  }, 240_000);

  it('refuses a pack named twice in one request, and a client past its unfinished jobs', async () => {
    const [a, b] = take(2);
    const twice = await h.call('/v1/packs/supply/bulk', {
      packs: [...packs([a!, b!], 'twice'), { ...packs([a!], 'twice-again')[0] }],
    });
    expect(twice).toMatchObject({ status: 400, json: { code: 'NODE_PACK_REPEATED', errors: [{ path: '/packs/2' }] } });
    expect(h.hub.store.pack(CODE, a!)?.s).toBe('ACTIVE');

    // Two jobs a client may have unfinished (the worker is held by a hung hub meanwhile).
    relay.freeze();
    const submit = (prefix: string) =>
      h.send('/v1/packs/supply/bulk', {
        body: { packs: packs(take(5), prefix) },
        headers: { prefer: 'respond-async' },
      });
    expect((await submit('cap-1')).status).toBe(202);
    expect((await submit('cap-2')).status).toBe(202);
    const third = await submit('cap-3');
    expect(third.status).toBe(429);
    expect(JSON.parse(third.body.toString())).toMatchObject({ code: 'NODE_TOO_MANY_JOBS' });
    relay.thaw();
    await until('the jobs to finish', () => h.node.bulkJobs.unfinished() === 0, 60_000);
    expect((await submit('cap-4')).status).toBe(202);
  }, 120_000);
});

const port = (r: FreezableRelay) => (r.server.address() as { port: number }).port;
