import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../../ca/test/fixtures.ts';
import { type Credential, startTestHub, type TestHub } from '../../gateway/test/fixtures.ts';
import type { RunningVerifierNode } from '../src/service.ts';
import { nodeCredential, startTestNode } from './fixtures.ts';

// A verifier node whose certificate the CA revokes stops: its replica no longer receives recalls
// and decommissions, so it answers no pharmacy (503), verification included, and says so in its
// health. It notices within seconds: the hub ends the node's feed long-poll at the revocation.

const dir = mkdtempSync(join(tmpdir(), 'packtrust-revocation-'));
const CODE = '09506000134352';
let hub: TestHub;
let nodeCred: Credential;
let node: RunningVerifierNode;
/** A second node that sends nothing: only its feed can tell it of the revocation. */
let quietCred: Credential;
let quiet: RunningVerifierNode;
let serials: string[];
let dispatcher: Agent;
let token: string;

beforeAll(async () => {
  hub = await startTestHub();
  serials = await hub.seedProduct(CODE, ['DE'], 100);
  const start = async (nodeId: string) => {
    const cred = await nodeCredential(hub, 'DE');
    // Longer than the test's budget: only the hub ending the long-poll lets a node notice in time.
    const running = await startTestNode(hub, 'DE', nodeId, dir, { feedWaitMs: 60_000 }, cred);
    return { cred, running };
  };
  ({ cred: nodeCred, running: node } = await start('de-1'));
  ({ cred: quietCred, running: quiet } = await start('de-2'));
  dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
  token = await (await hub.pharmacy('DE', 'DE-APO-1')).token();
  await node.replicator.waitFor(hub.store.feed('DE').last()!.seq, 30_000);
  await quiet.replicator.waitFor(hub.store.feed('DE').last()!.seq, 30_000);
}, 90_000);

afterAll(async () => {
  await dispatcher?.close();
  await node?.close();
  await quiet?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

const pack = (serial: string) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' });

async function call(method: 'GET' | 'POST', path: string, body?: unknown, at = node) {
  const res = await request(`${at.url}${path}`, {
    method,
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, type: res.headers['content-type'], text, json: () => JSON.parse(text) };
}

const revokedProblem = {
  type: 'https://packtrust.dev/problems/node-certificate-revoked',
  title: "The hub refuses this node's certificate; this node answers nothing, use another node",
  status: 503,
  detail:
    "This node's certificate was revoked by the CA: it no longer receives recalls and decommissions from the hub, so it cannot answer. Use another node of the market.",
  code: 'NODE_CERTIFICATE_REVOKED',
};

describe('a verifier node whose certificate is revoked', () => {
  it('serves until then', async () => {
    expect((await call('POST', '/v1/packs/verify', pack(serials[0]!))).json()).toMatchObject({ returnCode: 'ACTIVE' });
    expect((await call('POST', '/v1/packs/supply', { txId: 'before', ...pack(serials[1]!) })).json()).toMatchObject({
      outcome: 'accepted',
    });
    expect((await call('GET', '/health')).json()).toMatchObject({ status: 'following', serving: true });
  });

  it('refuses supply (503, not 202 pending), stops serving within seconds, and says why in its health', async () => {
    for (const cred of [nodeCred, quietCred]) {
      const revoked = await httpsRequest(`${hub.caServer.adminUrl}/admin/certificates/${cred.serial}/revoke`, {
        method: 'POST',
        body: { reason: 'keyCompromise' },
        key: hub.t.operatorKeyPem,
        cert: hub.t.operatorCertPem,
        ca: hub.t.ca.chainPem(),
      });
      expect(revoked.status).toBe(200);
    }
    // Once the hub holds the CRL listing it, the node's next write is refused, whichever of the
    // write and the feed meets the refusal first.
    const deadline = Date.now() + 15_000;
    while (!hub.trust.isRevoked(nodeCred.serial) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const supply = await call('POST', '/v1/packs/supply', { txId: 'after', ...pack(serials[2]!) });
    expect(supply.status).toBe(503);
    expect(supply.type).toBe('application/problem+json; charset=utf-8');
    expect(supply.json()).toEqual(revokedProblem);

    for (const [n, nodeId] of [
      [node, 'de-1'],
      [quiet, 'de-2'],
    ] as const) {
      let health = (await call('GET', '/health', undefined, n)).json();
      while (health.serving !== false && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        health = (await call('GET', '/health', undefined, n)).json();
      }
      expect(health).toEqual({
        status: 'revoked',
        serving: false,
        market: 'DE',
        nodeId,
        appliedSeq: expect.any(Number),
        hubSeq: expect.any(Number),
        lag: expect.any(Number),
        packs: 100,
        alertsPending: 0,
        changesPending: 0,
        deadLetters: 0,
        lastError: expect.stringContaining("the hub refuses this node's certificate (HUB_CLIENT_CERT_REVOKED)"),
      });
      expect((await call('GET', '/metrics', undefined, n)).text).toContain(
        `packtrust_serving{market="DE",node="${nodeId}"} 0`,
      );
    }
    expect((await call('POST', '/v1/packs/verify', pack(serials[6]!), quiet)).json()).toEqual(revokedProblem);
    expect(hub.store.packs.get(CODE + serials[2])).toMatchObject({ s: 'ACTIVE' });
  }, 30_000);

  it('answers every pharmacy operation with 503 NODE_CERTIFICATE_REVOKED, verification included', async () => {
    const answers = [
      await call('POST', '/v1/packs/verify', pack(serials[3]!)),
      await call('POST', '/v1/packs/verify-bulk', { packs: [pack(serials[3]!), pack(serials[4]!)] }),
      await call('POST', '/v1/packs/supply', { txId: 'after-2', ...pack(serials[3]!) }),
      await call('POST', '/v1/packs/destroy/bulk', { packs: [{ txId: 'after-3', ...pack(serials[4]!) }] }),
      await call('POST', '/v1/packs/undo', { txId: 'after-4', ...pack(serials[1]!) }),
    ];
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.type).toBe('application/problem+json; charset=utf-8');
      expect(a.json()).toEqual(revokedProblem);
    }
    expect(node.stateChanges.pending()).toBe(0);
  });

  it("is refused by the hub with 401 HUB_CLIENT_CERT_REVOKED on the feed and on pack events (signed with the node's key)", async () => {
    const asNode = hub.client(nodeCred);
    const problem = {
      type: 'https://packtrust.dev/problems/hub-client-cert-revoked',
      title: 'The client certificate is revoked',
      status: 401,
      detail: `Certificate ${nodeCred.serial} is revoked`,
      code: 'HUB_CLIENT_CERT_REVOKED',
    };
    const feed = await asNode.get('/v1/feed/DE/records?after=0&limit=1');
    expect(feed.status).toBe(401);
    expect(feed.json()).toEqual(problem);
    const event = {
      txId: 'signed-by-revoked-node',
      productCode: CODE,
      serial: serials[5]!,
      op: 'supply',
      clientId: 'x',
      location: 'DE-APO-1',
      org: 'APO',
      role: 'pharmacy',
      at: Date.now(),
    };
    const events = await asNode.write('POST', '/v1/packs/events', JSON.stringify({ events: [event] }));
    expect(events.status).toBe(401);
    expect(events.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(events.json()).toEqual(problem);
    expect(hub.store.packs.get(CODE + serials[5])).toMatchObject({ s: 'ACTIVE' });
  });
});
