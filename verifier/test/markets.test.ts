import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKey, TokenClient } from '../../clients/token-client.ts';
import { contentDigest } from '../../common/src/content-digest.ts';
import { ClientRegistry } from '../../gateway/src/oauth/clients.ts';
import { productJson, randomSerials, startTestHub, type TestHub } from '../../gateway/test/fixtures.ts';
import type { RunningVerifierNode } from '../src/service.ts';
import { startTestNode } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'packtrust-markets-'));
const CODE = '09506000134352';
let hub: TestHub;
let de: RunningVerifierNode;
let fr: RunningVerifierNode;
let serials: string[];
let dispatcher: Agent;
const tokens: Record<string, string> = {};

const token = async (market: string, role: 'pharmacy' | 'wholesaler', location: string): Promise<string> =>
  (await hub.pharmacy(market, location, role)).token();
const node = (market: string, nodeId: string): Promise<RunningVerifierNode> => startTestNode(hub, market, nodeId, dir);

async function call(n: RunningVerifierNode, path: string, bearer: string, body: unknown) {
  const res = await request(`${n.url}${path}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

const pack = (serial: string, batch = 'B1') => ({ productCode: CODE, serial, batch, expiry: '291200' });
let tx = 0;
const change = (n: RunningVerifierNode, op: string, who: string, serial: string, txId = `tx-${++tx}`) =>
  call(n, `/v1/packs/${op}`, tokens[who]!, { txId, ...pack(serial) });
const verify = (n: RunningVerifierNode, who: string, serial: string) =>
  call(n, '/v1/packs/verify', tokens[who]!, pack(serial));
const caughtUp = async () => {
  await de.replicator.waitFor(hub.store.feed('DE').last()!.seq);
  await fr.replicator.waitFor(hub.store.feed('FR').last()!.seq);
};

beforeAll(async () => {
  hub = await startTestHub();
  const maker = await hub.credential('manufacturer', 'ACME');
  await hub.registerPrefix('ACME', '9506000');
  const up = hub.client(maker);
  expect((await up.write('POST', '/v1/products', JSON.stringify(productJson(CODE, ['DE', 'FR'])))).status).toBe(201);
  serials = randomSerials(1000);
  expect(
    (
      await up.write('POST', `/v1/products/${CODE}/batches/B1/packs?expiry=291200`, serials.join('\n'), {
        contentType: 'text/plain',
      })
    ).status,
  ).toBe(201);
  de = await node('DE', 'de-1');
  fr = await node('FR', 'fr-1');
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  tokens.deA = await token('DE', 'pharmacy', 'DE-APO-A');
  tokens.deB = await token('DE', 'pharmacy', 'DE-APO-B');
  tokens.frA = await token('FR', 'pharmacy', 'FR-PHA-A');
  tokens.deW = await token('DE', 'wholesaler', 'DE-WH-1');
  await caughtUp();
}, 90_000);

afterAll(async () => {
  await dispatcher?.close();
  await de?.close();
  await fr?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('state changes across markets', () => {
  it('a pack supplied in one market shows as supplied in the other', async () => {
    const res = await change(de, 'supply', 'deA', serials[0]!);
    expect(res.json).toMatchObject({ outcome: 'accepted', code: 'CHANGED', state: 'SUPPLIED' });
    await caughtUp();
    expect((await verify(fr, 'frA', serials[0]!)).json).toMatchObject({
      returnCode: 'DECOMMISSIONED',
      state: 'SUPPLIED',
    });
  });

  it('answers a repeat at the same place without an alert, and raises A7 when supplied elsewhere', async () => {
    expect((await change(de, 'supply', 'deA', serials[0]!)).json).toMatchObject({
      outcome: 'refused',
      code: 'ALREADY_IN_STATE_HERE',
    });
    const elsewhere = await change(fr, 'supply', 'frA', serials[0]!);
    expect(elsewhere.json).toMatchObject({ outcome: 'refused', code: 'ALREADY_DECOMMISSIONED', alert: { code: 'A7' } });
  });

  it('is idempotent on the client transaction id', async () => {
    const first = await change(de, 'supply', 'deA', serials[1]!, 'same-tx');
    const again = await change(de, 'supply', 'deA', serials[1]!, 'same-tx');
    expect(again.json).toEqual(first.json);
    expect(first.json.outcome).toBe('accepted');
  });

  it('applies the undo rules, each refusal with its code', async () => {
    await caughtUp();
    expect((await change(de, 'undo', 'deB', serials[1]!)).json).toMatchObject({
      outcome: 'refused',
      code: 'UNDO_OTHER_CLIENT',
      alert: { code: 'A24' },
    });
    expect((await change(fr, 'undo', 'frA', serials[1]!)).json).toMatchObject({ code: 'UNDO_OTHER_CLIENT' });
    expect((await change(de, 'undo', 'deA', serials[2]!)).json).toMatchObject({ code: 'UNDO_NOT_DECOMMISSIONED' });
    expect((await change(de, 'undo', 'deA', serials[1]!)).json).toMatchObject({ outcome: 'accepted', state: 'ACTIVE' });
    await caughtUp();
    expect((await verify(fr, 'frA', serials[1]!)).json).toMatchObject({ returnCode: 'ACTIVE' });
    expect((await change(de, 'stolen', 'deA', serials[3]!)).json).toMatchObject({
      outcome: 'accepted',
      state: 'STOLEN',
    });
    await caughtUp();
    expect((await change(de, 'undo', 'deA', serials[3]!)).json).toMatchObject({ code: 'UNDO_STATE_FINAL' });
  });

  it('keeps operations to the roles that may do them', async () => {
    expect((await change(de, 'export', 'deA', serials[4]!)).json).toMatchObject({
      outcome: 'refused',
      code: 'ROLE_NOT_ALLOWED',
    });
    expect((await change(de, 'export', 'deW', serials[4]!)).json).toMatchObject({
      outcome: 'accepted',
      state: 'EXPORTED',
    });
    expect((await call(de, '/v1/packs/teleport', tokens.deA!, { txId: 'x', ...pack(serials[5]!) })).status).toBe(400);
  });

  it('answers pending while the hub is down, delivers later, and raises an alert for a conflict found then', async () => {
    await hub.gateway.close();
    const pending = await change(de, 'supply', 'deA', serials[10]!, 'offline-1');
    expect(pending.status).toBe(202);
    expect(pending.json).toMatchObject({ outcome: 'pending' });
    const conflicting = await change(de, 'supply', 'deA', serials[11]!, 'offline-2');
    expect(conflicting.json.outcome).toBe('pending');
    expect(de.stateChanges.pending()).toBe(2);
    // The node's outbox waits (its drain is paused) while another market supplies serials[11] first.
    de.stateChanges.stop();
    await hub.restart();
    const first = await change(fr, 'supply', 'frA', serials[11]!);
    expect(first.json).toMatchObject({ outcome: 'accepted' });
    await de.stateChanges.flush();
    de.stateChanges.start();
    expect(de.stateChanges.pending()).toBe(0);
    expect(hub.store.packs.get(CODE + serials[10])).toMatchObject({ s: 'SUPPLIED' });
    const later = await change(de, 'supply', 'deA', serials[11]!, 'offline-2');
    expect(later.json).toMatchObject({ outcome: 'refused', code: 'ALREADY_DECOMMISSIONED', alert: { code: 'A7' } });
  }, 30_000);
});

describe("the nodes' writes at the hub", () => {
  it('are signed by the node, kept as evidence that re-verifies, and refused unsigned', async () => {
    await change(de, 'supply', 'deA', serials[30]!, 'evidence-tx');
    const records = [...hub.store.evidence.entries(1)].map((e) => e.body);
    const events = records.filter((r) => r.targetUri.endsWith('/v1/packs/events'));
    expect(events.length).toBeGreaterThan(0);
    expect(events.at(-1)).toMatchObject({ org: 'NMVO-DE', response: { status: 200 } });
    expect(records.some((r) => r.targetUri.endsWith('/v1/alerts'))).toBe(true);
    expect(await hub.verifyEvidence()).toMatchObject({ ok: true, findings: [] });

    const cred = await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE', ip: ['127.0.0.1'] });
    const body = JSON.stringify({ events: [] });
    const unsigned = await request(`${hub.hubUrl}/v1/packs/events`, {
      method: 'POST',
      dispatcher: new Agent({ connect: { ca: hub.t.ca.chainPem(), cert: cred.certPem, key: cred.keyPem } }),
      headers: { 'content-type': 'application/json', 'content-digest': contentDigest(Buffer.from(body)) },
      body,
    });
    expect(unsigned.statusCode).toBe(401);
    expect(await unsigned.body.json()).toMatchObject({ code: 'HUB_SIGNATURE_MISSING' });
  });
});

describe('disabled clients', () => {
  it("refuses a disabled client's tokens at the market's nodes, also at a node bootstrapped later", async () => {
    const { privateJwk, jwks } = await generateClientKey();
    const registry = new ClientRegistry(hub.store);
    const { clientId } = await registry.add({ market: 'DE', role: 'pharmacy', location: 'DE-APO-X', org: 'X', jwks });
    const c = new TokenClient({ issuer: hub.oauth.issuer, clientId, privateJwk, ca: hub.t.ca.chainPem() });
    const held = (await c.token()).accessToken;
    await c.close();
    const scan = (n: RunningVerifierNode) => call(n, '/v1/packs/verify', held, pack(serials[20]!));
    expect((await scan(de)).json).toMatchObject({ returnCode: 'ACTIVE' });

    await registry.disable(clientId);
    await caughtUp();
    expect((await scan(de)).json).toMatchObject({ status: 401, code: 'NODE_CLIENT_DISABLED' });
    // Another DE client is not affected, and FR got no record of a DE client.
    expect((await verify(de, 'deA', serials[20]!)).json).toMatchObject({ returnCode: 'ACTIVE' });
    expect(fr.replica.disabledClients.get(clientId)).toBeUndefined();

    const late = await node('DE', 'de-late');
    try {
      await late.replicator.waitFor(hub.store.feed('DE').last()!.seq);
      expect(late.replica.disabledClients.get(clientId)).toEqual(expect.any(Object));
      expect((await scan(late)).json).toMatchObject({ status: 401, code: 'NODE_CLIENT_DISABLED' });
    } finally {
      await late.close();
    }
  }, 30_000);
});
