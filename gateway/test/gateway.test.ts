import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCsr } from '../../ca/src/csr.ts';
import type { Issuer } from '../../ca/src/issuance.ts';
import { PROFILES, validateOnboarding } from '../../ca/src/profiles.ts';
import { createTestCa, opensslCsr, P256, run, type TestCa } from '../../ca/test/fixtures.ts';
import { contentDigest } from '../../common/src/content-digest.ts';
import { signMessage } from '../../common/src/http-signatures/index.ts';
import { checkBatchFields } from '../src/batches.ts';
import type { HubStore } from '../src/hub-store.ts';
import type { CaTrust } from '../src/trust.ts';
import { type Credential, productJson, randomSerials, signedHeaders, startTestHub, type TestHub } from './fixtures.ts';

let hub: TestHub;
let t: TestCa;
let trust: CaTrust;
let store: HubStore;
let hubUrl: string;
let credential: TestHub['credential'];
let client: TestHub['client'];
const product = productJson;

let acme: Credential;
let beta: Credential;

beforeAll(async () => {
  hub = await startTestHub();
  ({ t, trust, store, hubUrl, credential, client } = hub);
  acme = await credential('manufacturer', 'ACME');
  beta = await credential('manufacturer', 'BETA', ['-newkey', 'ed25519']);
  await hub.registerPrefix('ACME', '9506000');
  await hub.registerPrefix('BETA', '4012345');
  await hub.registerPrefix('GAMMA', '5012345');
}, 60_000);

afterAll(() => hub?.close());

const evidenceCount = () => store.evidence.last()?.seq ?? 0;

describe('signed uploads with receipts', () => {
  it('accepts a signed product upload, keeps the evidence, publishes to each market and returns a verified receipt', async () => {
    const res = await client(acme).write('POST', '/v1/products', JSON.stringify(product('09506000134352')));
    expect(res.status).toBe(201);
    expect(res.json()).toMatchObject({ product: { productCode: '09506000134352', owner: 'ACME', status: 'ACTIVE' } });
    expect(res.receipt?.verified).toBe(true);
    expect(String(res.headers['signature-input'])).toContain('"signature";req;key="sig1"');
    const seq = res.json<{ evidence: { seq: number } }>().evidence.seq;
    expect(store.evidence.record(seq)!.body).toMatchObject({ org: 'ACME', method: 'POST', response: { status: 201 } });
    expect([...store.feed('DE').entries()].at(-1)!.body).toMatchObject({ type: 'product', evidenceSeq: seq });
    expect([...store.feed('FR').entries()].filter((e) => e.body.type !== 'signing-keys')).toHaveLength(1);
    expect(await hub.verifyEvidence()).toMatchObject({ ok: true, findings: [] });
  });

  it('accepts Ed25519 and RSA (rsa-pss-sha512) manufacturers too', async () => {
    expect(
      (await client(beta).write('POST', '/v1/products', JSON.stringify(product('04012345000009', ['IT'])))).status,
    ).toBe(201);
    const rsa = await credential('manufacturer', 'GAMMA', ['-newkey', 'rsa:2048']);
    const res = await client(rsa).write('POST', '/v1/products', JSON.stringify(product('05012345000008', ['ES'])));
    expect(res.status).toBe(201);
    expect(res.receipt?.verified).toBe(true);
  });

  it('lets the owner read its product and no one else', async () => {
    expect((await client(acme).get('/v1/products/09506000134352')).json()).toMatchObject({
      product: { owner: 'ACME' },
    });
    const other = await client(beta).get('/v1/products/09506000134352');
    expect(other.status).toBe(403);
    expect(other.json()).toMatchObject({ code: 'HUB_NOT_OWNER' });
  });

  it('is reachable with curl --cert/--key', async () => {
    const cert = join(t.dir, 'curl.pem');
    const key = join(t.dir, 'curl.key');
    (await import('node:fs')).writeFileSync(cert, acme.certPem);
    (await import('node:fs')).writeFileSync(key, acme.keyPem);
    const chain = t.file('chain.pem', t.ca.chainPem());
    const r = await run('curl', [
      '-sS',
      '--cacert',
      chain,
      '--cert',
      cert,
      '--key',
      key,
      `${hubUrl}/v1/products/09506000134352`,
    ]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ product: { productCode: '09506000134352' } });
  });
});

describe('refusals write nothing', () => {
  async function refused(
    send: () => Promise<{ status: number; json(): Record<string, unknown> }>,
    status: number,
    code: string,
  ) {
    const before = evidenceCount();
    const res = await send();
    expect(res.json()).toMatchObject({ status, code });
    expect(res.status).toBe(status);
    expect(evidenceCount()).toBe(before);
  }

  it('refuses a body that does not match its digest', async () => {
    const signed = Buffer.from(JSON.stringify(product('09506000134369')));
    await refused(
      () =>
        rawPost(
          acme,
          '/v1/products',
          signedHeaders(acme, `${hubUrl}/v1/products`, signed),
          Buffer.from(JSON.stringify(product('09506000134376'))),
        ),
      400,
      'HUB_DIGEST_MISMATCH',
    );
    expect(store.products.get('09506000134376')).toBeUndefined();
  });

  it('refuses a covered header changed after signing', async () => {
    const body = Buffer.from(JSON.stringify(product('09506000134369')));
    const headers = signedHeaders(acme, `${hubUrl}/v1/products`, body);
    headers['content-type'] = 'application/json; charset=utf-8';
    await refused(() => rawPost(acme, '/v1/products', headers, body), 401, 'HUB_SIGNATURE_INVALID');
  });

  it('refuses a stale created and a replayed request', async () => {
    const body = Buffer.from(JSON.stringify(product('09506000134369')));
    const stale = signedHeaders(acme, `${hubUrl}/v1/products`, body, { created: Math.floor(Date.now() / 1000) - 301 });
    await refused(() => rawPost(acme, '/v1/products', stale, body), 401, 'HUB_SIGNATURE_STALE');
    const headers = signedHeaders(acme, `${hubUrl}/v1/products`, body);
    expect((await rawPost(acme, '/v1/products', headers, body)).status).toBe(201);
    await refused(() => rawPost(acme, '/v1/products', headers, body), 401, 'HUB_SIGNATURE_REPLAYED');
  });

  it('honours expires: refuses an expired signature and one that expires before it was created', async () => {
    const body = Buffer.from(JSON.stringify(product('09506000135007')));
    const now = Math.floor(Date.now() / 1000);
    const expired = signedHeaders(acme, `${hubUrl}/v1/products`, body, { created: now - 20, expires: now - 10 });
    const res = await rawPost(acme, '/v1/products', expired, body);
    expect(res).toMatchObject({ status: 401, contentType: 'application/problem+json; charset=utf-8' });
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-signature-expired',
      title: 'The signature has expired',
      status: 401,
      detail: `The signature expired at ${new Date((now - 10) * 1000).toISOString()}`,
      code: 'HUB_SIGNATURE_EXPIRED',
    });
    const backwards = signedHeaders(acme, `${hubUrl}/v1/products`, body, { created: now, expires: now - 1 });
    await refused(() => rawPost(acme, '/v1/products', backwards, body), 401, 'HUB_SIGNATURE_INVALID');
    expect(store.products.get('09506000135007')).toBeUndefined();
    // Not yet expired: accepted.
    const fresh = signedHeaders(acme, `${hubUrl}/v1/products`, body, { created: now, expires: now + 60 });
    expect((await rawPost(acme, '/v1/products', fresh, body)).status).toBe(201);
  });

  it("builds @target-uri from the hub's public URL, never from the client's Host header", async () => {
    const body = Buffer.from(JSON.stringify(product('09506000135014')));
    const port = new URL(hubUrl).port;
    // Signed for another authority, and sent with that Host: the hub is not that authority.
    const elsewhere = `https://localhost:${port}/v1/products`;
    const headers = { ...signedHeaders(acme, elsewhere, body), host: `localhost:${port}` };
    const res = await rawPost(acme, '/v1/products', headers, body);
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-signature-invalid',
      title: 'The HTTP message signature does not verify',
      status: 401,
      detail: `signature "sig1" does not verify (the hub signs and verifies @target-uri as ${hubUrl}/v1/products)`,
      code: 'HUB_SIGNATURE_INVALID',
    });
    expect(store.products.get('09506000135014')).toBeUndefined();
    // Signed for the hub's public URL: the Host header the client sent does not matter.
    const right = { ...signedHeaders(acme, `${hubUrl}/v1/products`, body), host: 'hub.invalid' };
    expect((await rawPost(acme, '/v1/products', right, body)).status).toBe(201);
  });

  it('refuses a signature that omits a required component or is made by another key', async () => {
    const body = Buffer.from(JSON.stringify(product('09506000134383')));
    const targetUri = `${hubUrl}/v1/products`;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-digest': contentDigest(body),
    };
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sign = (components: string[], key = privateKey) =>
      signMessage(
        { method: 'POST', targetUri, headers },
        {
          label: 'sig1',
          components,
          params: {
            created: Math.floor(Date.now() / 1000),
            keyid: acme.fingerprint,
            nonce: randomBytes(9).toString('hex'),
          },
          key,
          alg: 'ecdsa-p256-sha256',
        },
      );
    const partial = sign(['@method', '@target-uri', 'content-digest']);
    await refused(
      () =>
        rawPost(
          acme,
          '/v1/products',
          { ...headers, 'signature-input': partial.signatureInput, signature: partial.signature },
          body,
        ),
      401,
      'HUB_SIGNATURE_MISSING',
    );
    const wrongKey = sign(['@method', '@target-uri', 'content-digest', 'content-type']);
    await refused(
      () =>
        rawPost(
          acme,
          '/v1/products',
          { ...headers, 'signature-input': wrongKey.signatureInput, signature: wrongKey.signature },
          body,
        ),
      401,
      'HUB_SIGNATURE_INVALID',
    );
    await refused(() => rawPost(acme, '/v1/products', headers, body), 401, 'HUB_SIGNATURE_MISSING');
  });

  it("refuses a bad GTIN and another organisation's product, leaving the product as it was", async () => {
    await refused(
      () => client(acme).write('POST', '/v1/products', JSON.stringify(product('09506000134353'))),
      400,
      'HUB_MASTER_DATA_INVALID',
    );
    const before = store.products.get('09506000134352');
    const seq = evidenceCount() + 1;
    const res = await client(beta).write(
      'POST',
      '/v1/products',
      JSON.stringify({ ...product('09506000134352'), name: 'Hijacked' }),
    );
    // Acting beyond one's rights is refused, and the attempt is kept as evidence with a signed answer.
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-not-owner',
      title: 'Only the organisation that owns the product may do this',
      status: 403,
      code: 'HUB_NOT_OWNER',
      detail: 'Product 09506000134352 is registered by another organisation',
      evidence: { seq },
    });
    expect(res.receipt?.verified).toBe(true);
    expect(store.evidence.record(seq)!.body).toMatchObject({ org: 'BETA', response: { status: 403 } });
    expect(store.products.get('09506000134352')).toEqual(before);
    expect(await hub.verifyEvidence()).toMatchObject({ ok: true, findings: [] });
  });

  it('refuses a foreign CA, a wrong profile and a missing certificate', async () => {
    const foreign = await createTestCa();
    try {
      const { csr, keyPath } = opensslCsr(foreign.dir, 'f', P256);
      const issued = await foreign.ca.issue({ csr, profile: 'manufacturer', org: 'ACME' }, 'test');
      const f = client({
        certPem: issued.certificatePem,
        keyPem: readFileSync(keyPath, 'utf8'),
      });
      await refused(
        () => f.write('POST', '/v1/products', JSON.stringify(product('09506000134390'))),
        401,
        'HUB_CLIENT_CERT_UNTRUSTED',
      );
    } finally {
      await foreign.cleanup();
    }
    const operator = await credential('operator', 'OPS');
    await refused(
      () => client(operator).write('POST', '/v1/products', JSON.stringify(product('09506000134390'))),
      403,
      'HUB_PROFILE_NOT_ALLOWED',
    );
    await refused(
      () => rawPost(undefined, '/v1/products', { 'content-type': 'application/json' }, Buffer.from('{}')),
      401,
      'HUB_CLIENT_CERT_REQUIRED',
    );
  });

  it('refuses a manufacturer certificate for a key that signs no accepted algorithm (P-384), reads included', async () => {
    // Such certificates were issued before the CA checked keys against profiles: made here the
    // way the CA's issuer made them then, past today's check.
    const { csr, keyPath } = opensslCsr(t.dir, 'p384-maker', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    const issuer = (t.ca as unknown as { issuer: Issuer }).issuer;
    const issued = await issuer.issue(
      checkCsr(csr),
      validateOnboarding(PROFILES.manufacturer, { org: 'ACME' }),
      'an older CA',
    );
    const agent = new Agent({
      ca: t.ca.chainPem(),
      cert: issued.certificatePem + issued.chainPem,
      key: readFileSync(keyPath, 'utf8'),
    });
    const read = await rawGet(agent, '/v1/products/09506000134352');
    agent.destroy();
    expect(read.status).toBe(401);
    expect(read.contentType).toBe('application/problem+json; charset=utf-8');
    expect(read.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-client-cert-untrusted',
      title: 'The client certificate is not one the packtrust CA issued',
      status: 401,
      detail:
        'A manufacturer certificate holds a P-256, Ed25519 or RSA key (it signs HTTP messages); this key is P-384',
      code: 'HUB_CLIENT_CERT_UNTRUSTED',
    });
  });

  it('refuses a certificate revoked after the TLS session was set up, on the same kept-alive connection', async () => {
    const victim = await credential('manufacturer', 'ACME');
    const c = client(victim);
    expect((await c.write('POST', '/v1/products', JSON.stringify(product('09506000134406')))).status).toBe(201);
    await t.ca.revoke(victim.serial, 'keyCompromise', 'test');
    const deadline = Date.now() + 5000;
    while (!trust.isRevoked(victim.serial) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await refused(
      () => c.write('POST', '/v1/products', JSON.stringify(product('09506000134406'))),
      401,
      'HUB_CLIENT_CERT_REVOKED',
    );
  });
});

describe('revocation and TLS session resumption', () => {
  it('refuses a revoked certificate on a resumed TLS session (abbreviated handshake, no CRL check there)', async () => {
    const victim = await credential('manufacturer', 'ACME');
    // No keep-alive: every request is a new connection, which resumes the cached TLS session.
    const agent = new Agent({ keepAlive: false, ca: t.ca.chainPem(), cert: victim.certPem, key: victim.keyPem });
    const first = await rawGet(agent, '/health');
    expect(first.status).toBe(200);
    const second = await rawGet(agent, '/health');
    expect(second.resumed).toBe(true);
    await t.ca.revoke(victim.serial, 'keyCompromise', 'test');
    const deadline = Date.now() + 5000;
    while (!trust.isRevoked(victim.serial) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const refused = await rawGet(agent, '/v1/products/09506000134352');
    expect(refused.resumed).toBe(true);
    expect(refused.status).toBe(401);
    expect(refused.json()).toMatchObject({ code: 'HUB_CLIENT_CERT_REVOKED' });
    agent.destroy();
  });
});

describe('batches and packs', () => {
  const code = '09506000134413';
  let serials: string[];

  beforeAll(async () => {
    expect(code.length).toBe(14);
    const res = await client(acme).write('POST', '/v1/products', JSON.stringify(product(code, ['DE', 'AT'])));
    expect(res.status).toBe(201);
    serials = randomSerials(100_000);
  });

  it('accepts a batch of 100,000 packs with a randomisation report, and publishes it to every market', async () => {
    const feedBefore = store.feed('AT').last()?.seq ?? 0;
    const res = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-001/packs?expiry=281200`,
      `${serials.join('\n')}\n`,
      {
        contentType: 'text/plain',
      },
    );
    expect(res.status).toBe(201);
    const body = res.json<{ batch: Record<string, unknown>; packsAdded: number; randomisation: { verdict: string } }>();
    expect(body).toMatchObject({
      packsAdded: 100_000,
      batch: { status: 'ACTIVE', expiryDate: '2028-12-31', packCount: 100_000 },
    });
    expect(body.randomisation.verdict).toBe('pass');
    expect(res.receipt?.verified).toBe(true);
    expect(store.packs.get(code + serials[99_999])).toEqual({ b: 'B-001', s: 'ACTIVE' });
    const records = [...store.feed('AT').entries(feedBefore + 1)].map((e) => e.body);
    expect(records[0]).toMatchObject({ type: 'batch' });
    expect(records.filter((r) => r.type === 'packs').reduce((n, r) => n + (r.type === 'packs' ? r.count : 0), 0)).toBe(
      100_000,
    );
  }, 60_000);

  it('refuses duplicates inside an upload and against stored packs, naming them, and writes nothing', async () => {
    const before = evidenceCount();
    const fresh = randomSerials(2000);
    const inside = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-002/packs?expiry=281200`,
      [...fresh, fresh[0]].join('\n'),
      { contentType: 'text/plain' },
    );
    expect(inside.status).toBe(400);
    expect(inside.json()).toMatchObject({
      code: 'HUB_MASTER_DATA_INVALID',
      failed: 1,
      items: [{ item: fresh[0], line: 2001 }],
    });
    const stored = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-002/packs?expiry=281200`,
      [...fresh, serials[5], serials[7]].join('\n'),
      { contentType: 'text/plain' },
    );
    expect(stored.status).toBe(409);
    expect(stored.json()).toMatchObject({ code: 'HUB_DUPLICATE_SERIAL', failed: 2 });
    expect(store.batches.get(`${code}|B-002`)).toBeUndefined();
    expect(store.packs.get(code + fresh[1])).toBeUndefined();
    expect(evidenceCount()).toBe(before);
  });

  it('refuses a body of another media type than its operation takes (415), before reading it', async () => {
    const before = evidenceCount();
    const asText = await client(acme).write('POST', '/v1/products', JSON.stringify(product(code, ['DE'])), {
      contentType: 'text/plain',
    });
    expect(asText.status).toBe(415);
    expect(asText.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(asText.json()).toEqual({
      type: 'https://packtrust.dev/problems/unsupported-media-type',
      title: 'Unsupported content type',
      status: 415,
      detail: 'POST /v1/products takes application/json, not text/plain',
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    const packsAsJson = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-JSON/packs?expiry=281200`,
      JSON.stringify(randomSerials(10)),
    );
    expect(packsAsJson.json()).toMatchObject({
      status: 415,
      detail: 'POST /v1/products/:productCode/batches/:batch/packs takes text/plain, not application/json',
    });
    expect(evidenceCount()).toBe(before);
  });

  it('refuses a batch whose expiry date has passed', async () => {
    const before = evidenceCount();
    const res = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-2024/packs?expiry=241200`,
      randomSerials(10).join('\n'),
      { contentType: 'text/plain' },
    );
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-batch-expired',
      title: 'The batch has expired',
      status: 422,
      detail: 'Batch B-2024 expired on 2024-12-31; packs of an expired batch are not registered',
      code: 'HUB_BATCH_EXPIRED',
    });
    expect(store.batch(code, 'B-2024')).toBeUndefined();
    expect(evidenceCount()).toBe(before);
  });

  it('refuses malformed serials, batch ids and expiry dates with the items that failed', async () => {
    const bad = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-003/packs?expiry=281200`,
      ['GOOD1', 'BAD SERIAL', 'x'.repeat(21)].join('\n'),
      { contentType: 'text/plain' },
    );
    expect(bad.json()).toMatchObject({ code: 'HUB_MASTER_DATA_INVALID', failed: 2, items: [{ line: 2 }, { line: 3 }] });
    const expiry = await client(acme).write('POST', `/v1/products/${code}/batches/B-003/packs?expiry=281301`, 'A1', {
      contentType: 'text/plain',
    });
    expect(expiry.json()).toMatchObject({ code: 'HUB_MASTER_DATA_INVALID' });
  });

  it('refuses serials repeated inside an upload with their lines, before its randomisation, writing nothing', async () => {
    const upload = (serials: string[]) =>
      client(acme).write('POST', `/v1/products/${code}/batches/B-REP/packs?expiry=281200`, serials.join('\n'), {
        contentType: 'text/plain',
      });
    const [a, b, c] = randomSerials(3);
    const repeated = await upload([a!, b!, c!, a!, b!]);
    expect(repeated.status).toBe(400);
    expect(repeated.json()).toMatchObject({
      code: 'HUB_MASTER_DATA_INVALID',
      failed: 2,
      items: [
        { item: a, line: 4, problem: 'serial appears more than once in this upload' },
        { item: b, line: 5, problem: 'serial appears more than once in this upload' },
      ],
    });
    // A counter with a repeat: the repeat is what the manufacturer hears of first.
    const counter = Array.from({ length: 2000 }, (_, i) => String(800_000 + i));
    const both = await upload([...counter, counter[7]!]);
    expect(both.status).toBe(400);
    expect(both.json()).toMatchObject({ code: 'HUB_MASTER_DATA_INVALID', items: [{ line: 2001 }] });
    expect(store.batch(code, 'B-REP')).toBeUndefined();
    expect(store.pack(code, a!)).toBeUndefined();
  });

  it('rejects serials made by a counter under the reject policy, with the finding', async () => {
    const counter = Array.from({ length: 5000 }, (_, i) => String(700_000 + i));
    const res = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-004/packs?expiry=281200`,
      counter.join('\n'),
      { contentType: 'text/plain' },
    );
    expect(res.status).toBe(422);
    expect(res.json()).toMatchObject({ code: 'HUB_RANDOMISATION_REJECTED', randomisation: { verdict: 'reject' } });
    expect(store.batches.get(`${code}|B-004`)).toBeUndefined();
  });

  it("judges an upload with the product's serials already registered, over all its batches (issue 13)", async () => {
    const split = '09506000134444';
    expect((await client(acme).write('POST', '/v1/products', JSON.stringify(product(split, ['DE'])))).status).toBe(201);
    // 180 random 6-digit serials: 90 pass alone (9·10⁻⁵); the product's 180 do not (1.8·10⁻⁴).
    const six = new Set<string>();
    while (six.size < 180) six.add(String(Math.floor(Math.random() * 1e6)).padStart(6, '0'));
    const [first, second] = [[...six].slice(0, 90), [...six].slice(90)];
    const upload = (batch: string, serials: string[]) =>
      client(acme).write('POST', `/v1/products/${split}/batches/${batch}/packs?expiry=281200`, serials.join('\n'), {
        contentType: 'text/plain',
      });
    const dryRun = (serials: string[]) =>
      client(acme).dryRun(`/v1/products/${split}/serials/check`, serials.join('\n'), { contentType: 'text/plain' });
    const one = await upload('S-1', first);
    expect(one.status).toBe(201);
    expect(one.json()).toMatchObject({ randomisation: { packs: 90, productPacks: 90 } });
    expect(one.json<{ randomisation: { verdict: string } }>().randomisation.verdict).not.toBe('reject');
    // The dry run judges the list with the 90 registered, as the upload will be.
    expect((await dryRun(second)).json()).toMatchObject({
      uploadWouldBeRefused: true,
      randomisation: { packs: 90, productPacks: 180, verdict: 'reject' },
    });
    // Another batch of the same product changes nothing: a guesser guesses the product's serials.
    const two = await upload('S-2', second);
    expect(two.status).toBe(422);
    expect(two.json()).toMatchObject({
      code: 'HUB_RANDOMISATION_REJECTED',
      detail: expect.stringContaining("the product's 180 serials of 6 characters"),
      randomisation: {
        packs: 90,
        productPacks: 180,
        guessBasis: { serialLength: 6, packs: 180 },
        findings: expect.arrayContaining([
          expect.objectContaining({ code: 'GUESS_PROBABILITY_TOO_HIGH', severity: 'reject' }),
        ]),
      },
    });
    expect(store.batch(split, 'S-2')).toBeUndefined();
    expect(store.packCountOf(split)).toBe(90);
    // The refused upload left the kept statistics as they were: the same list is judged the same again.
    expect(store.serialStatistics(split).packs).toBe(90);
    expect((await dryRun(second)).json()).toMatchObject({ randomisation: { productPacks: 180 } });
  });

  it("takes more packs for a batch whose expiry is written YYMM00 or as the month's last day, and no other date", async () => {
    const up = (expiry: string) =>
      client(acme).write(
        'POST',
        `/v1/products/09506000134352/batches/EOM/packs?expiry=${expiry}`,
        randomSerials(3).join('\n'),
        {
          contentType: 'text/plain',
        },
      );
    expect((await up('291200')).status).toBe(201);
    expect((await up('291231')).status).toBe(201);
    const other = await up('291230');
    expect(other.status).toBe(400);
    expect(other.json()).toMatchObject({
      code: 'HUB_MASTER_DATA_INVALID',
      detail: 'Batch EOM has expiry 291231, not 291230',
    });
  });

  describe('the dry run of serials (POST /v1/products/{code}/serials/check)', () => {
    /** A fixed step of 10,001 from a random 12-digit start, shuffled: a weak list. */
    const weak = () => {
      const start = BigInt(300_000_000_000 + Math.floor(Math.random() * 1e11));
      const list = Array.from({ length: 2000 }, (_, i) => String(start + BigInt(i) * 10_001n));
      return list.sort(() => Math.random() - 0.5);
    };

    it('answers the full report of a weak list, with explanations, and stores nothing', async () => {
      const list = weak();
      const [packsBefore, evidenceBefore] = [store.packCountOf(code), evidenceCount()];
      const res = await client(acme).dryRun(`/v1/products/${code}/serials/check`, `${list.join('\r\n')}\r\n`, {
        contentType: 'text/plain',
      });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.receipt).toBeUndefined();
      const body = res.json<{
        productCode: string;
        uploadWouldBeRefused: boolean;
        randomisation: { packs: number; verdict: string; findings: Record<string, string>[] };
      }>();
      expect(body).toMatchObject({
        productCode: code,
        uploadWouldBeRefused: true,
        randomisation: { packs: 2000, verdict: 'reject' },
      });
      const step = body.randomisation.findings.find((f) => f.code === 'ARITHMETIC_PROGRESSION');
      expect(step).toEqual({
        code: 'ARITHMETIC_PROGRESSION',
        severity: 'reject',
        detail: 'sorted, the serials follow a fixed increment of 10001, whatever the order they were uploaded in',
        explanation: expect.stringContaining('go up by the same amount each time'),
      });
      for (const f of body.randomisation.findings) expect(f.explanation).toMatch(/\w/);
      // Nothing stored: no packs, no batch, no evidence record.
      expect(store.packCountOf(code)).toBe(packsBefore);
      expect(store.packs.get(code + list[0])).toBeUndefined();
      expect(evidenceCount()).toBe(evidenceBefore);
    });

    it('answers a random list with a passing report', async () => {
      const res = await client(acme).dryRun(`/v1/products/${code}/serials/check`, randomSerials(1000).join('\n'), {
        contentType: 'text/plain',
      });
      expect(res.json()).toMatchObject({ uploadWouldBeRefused: false, randomisation: { verdict: 'pass' } });
    });

    it("refuses another organisation's product with 403, and a body that is not text with 415", async () => {
      const res = await client(beta).dryRun(`/v1/products/${code}/serials/check`, weak().join('\n'), {
        contentType: 'text/plain',
      });
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json()).toEqual({
        type: 'https://packtrust.dev/problems/hub-not-owner',
        title: 'Only the organisation that owns the product may do this',
        status: 403,
        detail: `No product ${code} owned by BETA`,
        code: 'HUB_NOT_OWNER',
      });
      const json = await client(acme).dryRun(`/v1/products/${code}/serials/check`, '["A1"]', {
        contentType: 'application/json',
      });
      expect(json.status).toBe(415);
    });
  });

  it('lets only the owner upload to or recall its batches', async () => {
    const res = await client(beta).write(
      'POST',
      `/v1/products/${code}/batches/B-005/packs?expiry=281200`,
      randomSerials(10).join('\n'),
      { contentType: 'text/plain' },
    );
    expect(res.status).toBe(403);
    const recall = await client(beta).write(
      'POST',
      `/v1/products/${code}/batches/B-001/recall`,
      JSON.stringify({ reason: 'not mine' }),
    );
    expect(recall.json()).toMatchObject({ status: 403, code: 'HUB_NOT_OWNER' });
    expect(store.batches.get(`${code}|B-001`)!.status).toBe('ACTIVE');
  });

  it('recalls a batch irreversibly and refuses further packs for it', async () => {
    const recall = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-001/recall`,
      JSON.stringify({ reason: 'contamination found' }),
    );
    expect(recall.json()).toMatchObject({ batch: { status: 'RECALLED', reason: 'contamination found' } });
    expect([...store.feed('DE').entries()].at(-1)!.body).toMatchObject({
      type: 'batch',
      batch: { status: 'RECALLED' },
    });
    const again = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-001/recall`,
      JSON.stringify({ reason: 'twice' }),
    );
    expect(again.json()).toMatchObject({ status: 409, code: 'HUB_BATCH_CLOSED' });
    const more = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-001/packs?expiry=281200`,
      randomSerials(10).join('\n'),
      { contentType: 'text/plain' },
    );
    expect(more.json()).toMatchObject({ code: 'HUB_BATCH_CLOSED' });
    const withdraw = await client(acme).write(
      'POST',
      `/v1/products/${code}/batches/B-001/withdraw`,
      JSON.stringify({ reason: 'market withdrawal' }),
    );
    expect(withdraw.json()).toMatchObject({ batch: { status: 'WITHDRAWN' } });
  });
});

describe('concurrent writes decide on what is stored when they commit', () => {
  const upload = (code: string, batch: string, n: number) =>
    client(acme).write(
      'POST',
      `/v1/products/${code}/batches/${batch}/packs?expiry=281200`,
      randomSerials(n).join('\n'),
      {
        contentType: 'text/plain',
      },
    );

  it('a recall answered 200 is never undone by an upload racing it, and no upload is lost from the count', async () => {
    const code = '09506000134390';
    expect((await client(acme).write('POST', '/v1/products', JSON.stringify(product(code)))).status).toBe(201);
    for (let trial = 0; trial < 10; trial++) {
      const batch = `RACE-${trial}`;
      expect((await upload(code, batch, 5)).status).toBe(201);
      const [recall, more, other] = await Promise.all([
        client(acme).write('POST', `/v1/products/${code}/batches/${batch}/recall`, JSON.stringify({ reason: 'race' })),
        upload(code, batch, 7),
        upload(code, batch, 11),
      ]);
      expect(recall.status).toBe(200);
      const stored = store.batches.get(`${code}|${batch}`)!;
      expect(stored.status).toBe('RECALLED');
      // Each upload either committed before the recall (counted) or was refused after it.
      const added = [more, other].map((r, i) => (r.status === 201 ? [7, 11][i]! : 0));
      for (const r of [more, other]) expect([201, 409]).toContain(r.status);
      expect(stored.packCount).toBe(5 + added[0]! + added[1]!);
      expect(recall.json()).toMatchObject({ batch: { status: 'RECALLED', packCount: stored.packCount } });
    }
  });
});

describe('feed for verifier nodes', () => {
  const lines = (body: Buffer) =>
    body
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  it('serves a consistent snapshot of the market, then the records after its sequence', async () => {
    const node = client(await credential('verifier-node', 'NMVO-DE', P256, { market: 'DE' }));
    const snap = await node.get('/v1/feed/DE/snapshot');
    expect(snap.status).toBe(200);
    const snapshot = lines(snap.body);
    expect(snapshot[0]).toMatchObject({ type: 'snapshot', market: 'DE', seq: store.feed('DE').last()!.seq });
    const end = snapshot.at(-1);
    expect(end.type).toBe('end');
    expect(snapshot.filter((l) => l.type === 'product').map((l) => l.product.productCode)).toContain('09506000134413');
    const packs = snapshot.filter((l) => l.type === 'packs').reduce((n, l) => n + l.count, 0);
    expect(packs).toBe(end.packs);
    expect(packs).toBeGreaterThanOrEqual(100_000);

    const page = await node.get('/v1/feed/DE/records?after=0&limit=3');
    const records = lines(page.body);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(records[1].prev).toBe(records[0].hash);
    expect(page.headers['x-feed-last-seq']).toBe(String(store.feed('DE').last()!.seq));
  });

  it('reads the records query through the contract: bounds capped, a bad value refused after the market', async () => {
    const node = client(await credential('verifier-node', 'NMVO-DE', P256, { market: 'DE' }));
    const total = store.feed('DE').last()!.seq;
    expect(lines((await node.get('/v1/feed/DE/records?after=0&limit=0')).body)).toHaveLength(1);
    const capped = await node.get('/v1/feed/DE/records?after=0&limit=50000&wait=120000');
    expect(capped.status).toBe(200);
    expect(lines(capped.body)).toHaveLength(Math.min(total, 10_000));
    const bad = await node.get('/v1/feed/DE/records?after=-1');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(bad.json()).toEqual({
      type: 'https://packtrust.dev/problems/bad-request',
      title: 'The request is malformed',
      status: 400,
      detail: 'Request querystring is invalid: querystring/after must be >= 0',
      code: 'BAD_REQUEST',
      errors: [{ path: '/after', message: 'must be >= 0' }],
    });
    expect((await node.get('/v1/feed/DE/records?wait=soon')).json()).toMatchObject({
      status: 400,
      code: 'BAD_REQUEST',
    });
    // Who may read which feed is decided first: an unserved market is 404 whatever the query.
    expect((await node.get('/v1/feed/QQ/records?after=-1')).json()).toMatchObject({
      status: 404,
      code: 'HUB_FEED_UNKNOWN',
    });
  });

  it('long-polls: a waiting reader gets a record as soon as it is committed', async () => {
    const node = client(await credential('verifier-node', 'NMVO-DE', P256, { market: 'DE' }));
    const last = store.feed('DE').last()!.seq;
    const started = Date.now();
    const waiting = node.get(`/v1/feed/DE/records?after=${last}&wait=10000`);
    await new Promise((r) => setTimeout(r, 200));
    expect(
      (await client(acme).write('POST', '/v1/products', JSON.stringify(product('09506000134420', ['DE'])))).status,
    ).toBe(201);
    const res = await waiting;
    expect(lines(res.body)[0]).toMatchObject({
      seq: last + 1,
      body: { type: 'product', product: { productCode: '09506000134420' } },
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('ends a long-poll with 401 within seconds when the waiting node is revoked', async () => {
    const cred = await credential('verifier-node', 'NMVO-DE', P256, { market: 'DE' });
    const node = client(cred);
    const last = store.feed('DE').last()!.seq;
    const started = Date.now();
    const waiting = node.get(`/v1/feed/DE/records?after=${last}&wait=30000`);
    await new Promise((r) => setTimeout(r, 200));
    await t.ca.revoke(cred.serial, 'keyCompromise', 'test');
    const res = await waiting;
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-client-cert-revoked',
      title: 'The client certificate is revoked',
      status: 401,
      detail: `Certificate ${cred.serial} is revoked`,
      code: 'HUB_CLIENT_CERT_REVOKED',
    });
    // The CRL is polled every 200 ms here and the long-poll looks again every second.
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 40_000);

  it("refuses another market's node and a manufacturer", async () => {
    const fr = client(await credential('verifier-node', 'NMVO-FR', P256, { market: 'FR' }));
    expect((await fr.get('/v1/feed/DE/records')).json()).toMatchObject({ status: 403, code: 'HUB_WRONG_MARKET' });
    expect((await client(acme).get('/v1/feed/DE/snapshot')).json()).toMatchObject({
      status: 403,
      code: 'HUB_PROFILE_NOT_ALLOWED',
    });
  });
});

describe('evidence', () => {
  it('re-verifies stored requests offline and finds a tampered body', async () => {
    expect(await hub.verifyEvidence()).toMatchObject({ ok: true, findings: [] });
    const seq = store.evidence.last()!.seq;
    const body = store.evidence.body(seq)!;
    await store.store.transaction(() =>
      store.store.db('evidence-bodies', { encoding: 'binary' }).putSync(seq, Buffer.concat([body, Buffer.from(' ')])),
    );
    expect(await hub.verifyEvidence()).toMatchObject({
      ok: false,
      findings: [{ code: 'RECORD_INVALID', seq, detail: 'the stored body does not match its recorded hash' }],
    });
    await store.store.transaction(() => store.store.db('evidence-bodies', { encoding: 'binary' }).putSync(seq, body));
  });
});

/** A raw mTLS POST with the given headers, for replays and hand-made signatures. */
function rawPost(cred: Credential | undefined, path: string, headers: Record<string, string>, body: Buffer) {
  return new Promise<{ status: number; contentType?: string; json(): Record<string, unknown> }>((resolve, reject) => {
    const req = request(
      `${hubUrl}${path}`,
      {
        method: 'POST',
        agent: new Agent({ ca: t.ca.chainPem(), ...(cred ? { cert: cred.certPem, key: cred.keyPem } : {}) }),
        // The TLS name, whatever Host header a test sends.
        servername: 'localhost',
        headers: { ...headers, 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            json: () => JSON.parse(Buffer.concat(chunks).toString()),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function rawGet(agent: Agent, path: string) {
  return new Promise<{ status: number; resumed: boolean; contentType?: string; json(): Record<string, unknown> }>(
    (resolve, reject) => {
      const req = request(`${hubUrl}${path}`, { agent }, (res) => {
        const chunks: Buffer[] = [];
        const resumed = (res.socket as import('node:tls').TLSSocket).isSessionReused();
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            resumed,
            contentType: res.headers['content-type'],
            json: () => JSON.parse(Buffer.concat(chunks).toString()),
          }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('feed of a market without any data yet', () => {
  it('serves a snapshot with only the token signing keys', async () => {
    const node = client(await credential('verifier-node', 'NMVO-PL', undefined, { market: 'PL' }));
    const res = await node.get('/v1/feed/PL/snapshot');
    expect(res.status).toBe(200);
    const lines = res.body
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: 'snapshot', market: 'PL', seq: 1 });
    expect(lines[1]).toEqual({ type: 'signing-keys', keys: hub.keys.publicJwks() });
    expect(lines[1].keys[0]).not.toHaveProperty('d');
    expect(lines.at(-1)).toMatchObject({ type: 'end', packs: 0 });
  });
});

describe('checkBatchFields', () => {
  it('takes a batch that expires today, and an expired one only when the configuration accepts them', () => {
    const today = '2026-11-30';
    expect(checkBatchFields('B1', '261130', { acceptExpired: false, today })).toEqual({
      expiry: '261130',
      expiryDate: '2026-11-30',
    });
    // Day 00: the end of the month, so November 2026 has not expired on its 30th.
    expect(checkBatchFields('B1', '261100', { acceptExpired: false, today }).expiryDate).toBe('2026-11-30');
    expect(() => checkBatchFields('B1', '261129', { acceptExpired: false, today })).toThrow(
      'Batch B1 expired on 2026-11-29; packs of an expired batch are not registered',
    );
    expect(checkBatchFields('B1', '241200', { acceptExpired: true, today }).expiryDate).toBe('2024-12-31');
  });
});

describe('the hub store on disk', () => {
  it("is its owner's alone: directory 0700, files 0600", () => {
    const env = join(hub.dir, 'hub');
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    expect([mode(env), ...readdirSync(env).map((f) => `${f} ${mode(join(env, f))}`)]).toEqual([
      '700',
      'data.mdb 600',
      'lock.mdb 600',
    ]);
  });
});

describe('monitoring', () => {
  const get = async (path: string, cred?: Pick<Credential, 'certPem' | 'keyPem'>) => {
    const agent = new Agent({ ca: t.ca.chainPem(), ...(cred ? { cert: cred.certPem, key: cred.keyPem } : {}) });
    try {
      const res = await new Promise<{ status: number; type?: string; body: string }>((resolve, reject) => {
        const req = request(`${hubUrl}${path}`, { agent }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () =>
            resolve({
              status: r.statusCode ?? 0,
              type: r.headers['content-type'],
              body: Buffer.concat(chunks).toString(),
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
      return res;
    } finally {
      agent.destroy();
    }
  };

  it('says on /health, to anyone, only whether the gateway serves', async () => {
    expect(await get('/health')).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: '{"status":"ok"}',
    });
  });

  it('shows /metrics to operators only, over mutual TLS', async () => {
    const anonymous = await get('/metrics');
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body)).toEqual({
      type: 'https://packtrust.dev/problems/hub-client-cert-required',
      title: 'A client certificate is required',
      status: 401,
      detail: 'Present a client certificate issued by the packtrust CA (mutual TLS)',
      code: 'HUB_CLIENT_CERT_REQUIRED',
    });
    const maker = await get('/metrics', acme);
    expect(maker.status).toBe(403);
    expect(JSON.parse(maker.body)).toMatchObject({ code: 'HUB_PROFILE_NOT_ALLOWED' });
    const operator = await get('/metrics', { certPem: t.operatorCertPem, keyPem: t.operatorKeyPem });
    expect(operator).toMatchObject({ status: 200, type: 'text/plain; version=0.0.4' });
    const crl = trust.crlStatus();
    expect(operator.body).toContain(
      `# HELP packtrust_evidence_seq Number of the last evidence record.\n# TYPE packtrust_evidence_seq gauge\npacktrust_evidence_seq ${store.evidence.lastSeq()}\n`,
    );
    expect(operator.body).toContain(`\npacktrust_crl_number ${crl.number}\n`);
    expect(operator.body).toContain(`\npacktrust_crl_revoked ${crl.revoked}\n`);
    expect(operator.body).toContain(`\npacktrust_crl_next_update_seconds ${Date.parse(crl.nextUpdate!) / 1000}\n`);
    expect(operator.body).toContain('\npacktrust_serving 1\n');
    expect(operator.body).toMatch(/\nprocess_resident_memory_bytes \d+\n/);
  });
});
