import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsRequest } from '../../ca/test/fixtures.ts';
import type { Credential } from '../../gateway/test/fixtures.ts';
import type { RunningVerifierNode } from '../src/service.ts';
import { CODE, type NodeHarness, nodeCredential, startNodeHarness, startTestNode } from './fixtures.ts';

// A verifier node whose certificate the CA revokes stops: its replica no longer receives recalls
// and decommissions, so it answers no pharmacy (503), verification included, and says so in its
// health. It notices within seconds: the hub ends the node's feed long-poll at the revocation.

let h: NodeHarness;
/** A second node that sends nothing: only its feed can tell it of the revocation. */
let quietCred: Credential;
let quiet: RunningVerifierNode;

beforeAll(async () => {
  // Longer than the test's budget: only the hub ending the long-poll lets a node notice in time.
  const feedWaitMs = 60_000;
  h = await startNodeHarness({ name: 'revocation', seed: 100, node: { feedWaitMs } });
  quietCred = await nodeCredential(h.hub, 'DE');
  quiet = await startTestNode(h.hub, 'DE', 'de-2', h.dir, { feedWaitMs }, quietCred);
  await quiet.replicator.waitFor(h.hub.store.feed('DE').last()!.seq, 30_000);
}, 90_000);

afterAll(async () => {
  await quiet?.close();
  await h?.close();
});

const pack = (serial: string) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' });

async function call(path: string, body?: unknown, at = h.node) {
  const res = await h.send(path, { body, at });
  const text = res.body.toString();
  return { status: res.status, type: res.headers['content-type'], text, json: () => JSON.parse(text) };
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
    expect((await call('/v1/packs/verify', pack(h.serials[0]!))).json()).toMatchObject({ returnCode: 'ACTIVE' });
    expect((await call('/v1/packs/supply', { txId: 'before', ...pack(h.serials[1]!) })).json()).toMatchObject({
      outcome: 'accepted',
    });
    expect((await call('/health')).json()).toMatchObject({ status: 'following', serving: true });
  });

  it('refuses supply (503, not 202 pending), stops serving within seconds, and says why in its health', async () => {
    for (const cred of [h.nodeCred, quietCred]) {
      const revoked = await httpsRequest(`${h.hub.caServer.adminUrl}/admin/certificates/${cred.serial}/revoke`, {
        method: 'POST',
        body: { reason: 'keyCompromise' },
        key: h.hub.t.operatorKeyPem,
        cert: h.hub.t.operatorCertPem,
        ca: h.hub.t.ca.chainPem(),
      });
      expect(revoked.status).toBe(200);
    }
    // Once the hub holds the CRL listing it, the node's next write is refused, whichever of the
    // write and the feed meets the refusal first.
    const deadline = Date.now() + 15_000;
    while (!h.hub.trust.isRevoked(h.nodeCred.serial) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const supply = await call('/v1/packs/supply', { txId: 'after', ...pack(h.serials[2]!) });
    expect(supply.status).toBe(503);
    expect(supply.type).toBe('application/problem+json; charset=utf-8');
    expect(supply.json()).toEqual(revokedProblem);

    for (const [n, nodeId] of [
      [h.node, 'de-1'],
      [quiet, 'de-2'],
    ] as const) {
      let health = (await call('/health', undefined, n)).json();
      while (health.serving !== false && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        health = (await call('/health', undefined, n)).json();
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
        bulkJobsUnfinished: 0,
        deadLetters: 0,
        lastError: expect.stringContaining("the hub refuses this node's certificate (HUB_CLIENT_CERT_REVOKED)"),
      });
      expect((await call('/metrics', undefined, n)).text).toContain(
        `packtrust_serving{market="DE",node="${nodeId}"} 0`,
      );
    }
    expect((await call('/v1/packs/verify', pack(h.serials[6]!), quiet)).json()).toEqual(revokedProblem);
    expect(h.hub.store.packs.get(CODE + h.serials[2])).toMatchObject({ s: 'ACTIVE' });
  }, 30_000);

  it('answers every pharmacy operation with 503 NODE_CERTIFICATE_REVOKED, verification included', async () => {
    const answers = [
      await call('/v1/packs/verify', pack(h.serials[3]!)),
      await call('/v1/packs/verify-bulk', { packs: [pack(h.serials[3]!), pack(h.serials[4]!)] }),
      await call('/v1/packs/supply', { txId: 'after-2', ...pack(h.serials[3]!) }),
      await call('/v1/packs/destroy/bulk', { packs: [{ txId: 'after-3', ...pack(h.serials[4]!) }] }),
      await call('/v1/packs/undo', { txId: 'after-4', ...pack(h.serials[1]!) }),
    ];
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.type).toBe('application/problem+json; charset=utf-8');
      expect(a.json()).toEqual(revokedProblem);
    }
    expect(h.node.stateChanges.pending()).toBe(0);
  });

  it("is refused by the hub with 401 HUB_CLIENT_CERT_REVOKED on the feed and on pack events (signed with the node's key)", async () => {
    const asNode = h.hub.client(h.nodeCred);
    const problem = {
      type: 'https://packtrust.dev/problems/hub-client-cert-revoked',
      title: 'The client certificate is revoked',
      status: 401,
      detail: `Certificate ${h.nodeCred.serial} is revoked`,
      code: 'HUB_CLIENT_CERT_REVOKED',
    };
    const feed = await asNode.get('/v1/feed/DE/records?after=0&limit=1');
    expect(feed.status).toBe(401);
    expect(feed.json()).toEqual(problem);
    const event = {
      txId: 'signed-by-revoked-node',
      productCode: CODE,
      serial: h.serials[5]!,
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
    expect(h.hub.store.packs.get(CODE + h.serials[5])).toMatchObject({ s: 'ACTIVE' });
  });
});
