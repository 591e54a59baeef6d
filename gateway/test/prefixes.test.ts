import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeedRecord } from '../../common/src/feed-format.ts';
import { gs1CheckDigit } from '../../common/src/gs1.ts';
import type { Product } from '../src/hub-store.ts';
import { PrefixRegistry } from '../src/prefixes.ts';
import { type Credential, productJson, randomSerials, startTestHub, type TestHub } from './fixtures.ts';

let hub: TestHub;
let acme: Credential;
let beta: Credential;

beforeAll(async () => {
  hub = await startTestHub();
  acme = await hub.credential('manufacturer', 'ACME');
  beta = await hub.credential('manufacturer', 'BETA');
}, 60_000);
afterAll(() => hub?.close());

/** A GTIN-14 from its first 13 digits. */
const gtin = (digits: string) => `${digits}${gs1CheckDigit(digits)}`;
const registry = () => new PrefixRegistry(hub.store, 'test');
const evidenceSeq = () => hub.store.evidence.last()?.seq ?? 0;
const lastAudit = () => hub.store.prefixes.audit.last();
const register = (who: Credential, code: string, changes: Partial<Product> = {}) =>
  hub.client(who).write('POST', '/v1/products', JSON.stringify({ ...productJson(code), ...changes }));
const uploadPacks = (who: Credential, code: string, batch: string) =>
  hub
    .client(who)
    .write('POST', `/v1/products/${code}/batches/${batch}/packs?expiry=291200`, randomSerials(100).join('\n'), {
      contentType: 'text/plain',
    });

const ACME_CODE = '09506000134352';
const notOwnedProblem = (detail: string) => ({
  type: 'https://packtrust.dev/problems/hub-prefix-not-owned',
  title: "The product code is not under a GS1 company prefix of the caller's organisation",
  status: 403,
  detail,
  code: 'HUB_PREFIX_NOT_OWNED',
});

describe('POST /v1/products and the prefix registry', () => {
  it('refuses a product code under no registered prefix with the whole problem, and writes nothing but the evidence of the refusal', async () => {
    const before = { evidence: evidenceSeq(), feed: hub.store.feed('DE').last()?.seq ?? 0 };
    const res = await register(acme, ACME_CODE);
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      ...notOwnedProblem(
        'Product code 09506000134352 is under no GS1 company prefix registered for ACME; ask onboarding to register your company prefix',
      ),
      evidence: { seq: before.evidence + 1 },
    });
    // Acting beyond one's rights is kept as evidence, answered with a signed receipt.
    expect(res.receipt?.verified).toBe(true);
    expect(evidenceSeq()).toBe(before.evidence + 1);
    expect(hub.store.evidence.last()!.body).toMatchObject({ org: 'ACME', response: { status: 403 } });
    expect(hub.store.feed('DE').last()?.seq ?? 0).toBe(before.feed);
    expect(hub.store.products.get(ACME_CODE)).toBeUndefined();
  });

  it("refuses a product code under another organisation's prefix without naming that organisation", async () => {
    await hub.registerPrefix('BETA', '4012345');
    const before = evidenceSeq();
    const res = await register(acme, '04012345000009');
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({
      ...notOwnedProblem(
        'Product code 04012345000009 is under GS1 company prefix 4012345, which is registered for another organisation',
      ),
      evidence: { seq: before + 1 },
    });
    expect(evidenceSeq()).toBe(before + 1);
    expect(hub.store.products.get('04012345000009')).toBeUndefined();
  });

  it('registers product codes under its own prefix, whatever the indicator digit, and its owner updates them', async () => {
    await hub.registerPrefix('ACME', '9506000');
    const created = await register(acme, ACME_CODE);
    expect(created.status).toBe(201);
    expect(created.receipt?.verified).toBe(true);
    expect(created.json()).toMatchObject({ product: { productCode: ACME_CODE, owner: 'ACME', status: 'ACTIVE' } });
    const case24 = gtin('1950600013435');
    expect((await register(acme, case24)).status).toBe(201);
    const updated = await register(acme, ACME_CODE, { name: 'Examplix 20 mg film-coated tablets' });
    expect(updated.status).toBe(200);
    expect(updated.json()).toMatchObject({ product: { name: 'Examplix 20 mg film-coated tablets', owner: 'ACME' } });
  });

  it('lets the owner update a product it registered before the registry existed', async () => {
    // A product from before prefixes were registered: its prefix (7012345) belongs to no one yet.
    const legacy = await hub.credential('manufacturer', 'LEGACY');
    const code = gtin('0701234500000');
    const now = new Date().toISOString();
    const product: Product = {
      ...productJson(code),
      owner: 'LEGACY',
      status: 'ACTIVE',
      createdAt: now,
      updatedAt: now,
    };
    await hub.store.transaction(() => hub.store.putProduct(product));
    const res = await register(legacy, code, { packSize: 60 });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ product: { packSize: 60, owner: 'LEGACY' } });
  });
});

describe('PrefixRegistry.add', () => {
  it('registers a prefix for one organisation, once, and records it in the audit log', async () => {
    const added = await registry().add('GAMMA', '50123');
    expect(added).toEqual({ added: true, prefix: { prefix: '50123', org: 'GAMMA', since: expect.any(String) } });
    expect(lastAudit()!.body).toEqual({
      time: added.prefix.since,
      actor: 'test',
      action: 'add',
      prefix: '50123',
      org: 'GAMMA',
    });
    const seq = lastAudit()!.seq;
    expect(await registry().add('GAMMA', '50123')).toEqual({ added: false, prefix: added.prefix });
    expect(lastAudit()!.seq).toBe(seq);
    expect(registry().list('GAMMA')).toEqual([added.prefix]);
    expect(
      registry()
        .list()
        .map((p) => `${p.prefix} ${p.org}`),
    ).toEqual(['4012345 BETA', '50123 GAMMA', '9506000 ACME']);
  });

  it('refuses a prefix that is, extends or is a prefix of a registered one, and writes nothing', async () => {
    const seq = lastAudit()!.seq;
    await expect(registry().add('BETA', '9506000')).rejects.toMatchObject({
      code: 'HUB_PREFIX_OVERLAP',
      status: 409,
      message: 'Prefix 9506000 is registered for ACME; `prefix move` gives it to another organisation',
    });
    await expect(registry().add('BETA', '950600')).rejects.toMatchObject({
      code: 'HUB_PREFIX_OVERLAP',
      message: 'Prefix 950600 overlaps 9506000, registered for ACME; GS1 prefixes never overlap',
    });
    await expect(registry().add('BETA', '950600013435')).rejects.toMatchObject({
      code: 'HUB_PREFIX_OVERLAP',
      message: 'Prefix 950600013435 overlaps 9506000, registered for ACME; GS1 prefixes never overlap',
    });
    // Its own organisation too: GS1 never issues a prefix inside another, so this is a mistake.
    await expect(registry().add('ACME', '95060001')).rejects.toMatchObject({ code: 'HUB_PREFIX_OVERLAP' });
    expect(lastAudit()!.seq).toBe(seq);
    expect(
      registry()
        .list('BETA')
        .map((p) => p.prefix),
    ).toEqual(['4012345']);
  });

  it('refuses a prefix under which another organisation registered products', async () => {
    await expect(registry().add('GAMMA', '70123')).rejects.toMatchObject({
      code: 'HUB_PREFIX_OVERLAP',
      message: `Products under 70123 are registered by LEGACY (${gtin('0701234500000')}); register the prefix for that organisation, then move it if it has changed hands`,
    });
    expect((await registry().add('LEGACY', '70123')).added).toBe(true);
  });

  it('refuses what is not a company prefix or an organisation id, saying every problem', async () => {
    await expect(registry().add('ACME', '950')).rejects.toMatchObject({
      code: 'HUB_PREFIX_INVALID',
      status: 400,
      message: 'prefix "950" has 3 digits; a company prefix has 4 to 12',
    });
    await expect(registry().add('no spaces', '95O6')).rejects.toMatchObject({
      code: 'HUB_PREFIX_INVALID',
      message:
        'prefix "95O6" must be digits only; organisation id "no spaces" must be 1-64 letters, digits, ".", "_", ":" or "-"',
    });
  });
});

describe('PrefixRegistry.move', () => {
  it('gives the prefix and its products to the new owner, and tells the verifier nodes', async () => {
    const case24 = gtin('1950600013435');
    expect((await uploadPacks(acme, ACME_CODE, 'B1')).status).toBe(201);
    const feedBefore = { DE: hub.store.feed('DE').last()!.seq, FR: hub.store.feed('FR').last()!.seq };
    const before = hub.store.products.get(ACME_CODE)!;

    expect(await registry().move('9506000', 'BETA')).toEqual({
      prefix: '9506000',
      from: 'ACME',
      to: 'BETA',
      products: 2,
    });
    const audit = lastAudit()!;
    expect(audit.body).toEqual({
      time: expect.any(String),
      actor: 'test',
      action: 'move',
      prefix: '9506000',
      org: 'BETA',
      from: 'ACME',
      products: 2,
    });
    expect(
      registry()
        .list('BETA')
        .map((p) => p.prefix),
    ).toEqual(['4012345', '9506000']);
    const moved = hub.store.products.get(ACME_CODE)!;
    expect(moved).toEqual({ ...before, owner: 'BETA', updatedAt: audit.body.time });
    expect(hub.store.products.get(case24)!.owner).toBe('BETA');

    // A verifier node reads the re-owned products on its market's feed.
    const node = hub.client(await hub.credential('verifier-node', 'NMVO-DE', undefined, { market: 'DE' }));
    const page = await node.get(`/v1/feed/DE/records?after=${feedBefore.DE}`);
    const records = page.body
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { body: FeedRecord });
    expect(records.map((r) => r.body)).toEqual([
      { type: 'product', product: moved, prefixAuditSeq: audit.seq },
      { type: 'product', product: hub.store.products.get(case24), prefixAuditSeq: audit.seq },
    ]);
    expect([...hub.store.feed('FR').entries(feedBefore.FR + 1)].map((e) => e.body)).toHaveLength(2);

    // The new owner uploads batches, and recalls the one the former owner uploaded.
    const batch = await uploadPacks(beta, ACME_CODE, 'B2');
    expect(batch.status).toBe(201);
    expect(batch.receipt?.verified).toBe(true);
    const recall = await hub
      .client(beta)
      .write('POST', `/v1/products/${ACME_CODE}/batches/B1/recall`, JSON.stringify({ reason: 'new holder' }));
    expect(recall.status).toBe(200);
    expect((await register(beta, gtin('0950600013437'))).status).toBe(201);

    // The former owner can do none of it.
    const refused = await uploadPacks(acme, ACME_CODE, 'B3');
    expect(refused.status).toBe(403);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(refused.json()).toEqual({
      type: 'https://packtrust.dev/problems/hub-not-owner',
      title: 'Only the organisation that owns the product may do this',
      status: 403,
      detail: 'No product 09506000134352 owned by ACME',
      code: 'HUB_NOT_OWNER',
      evidence: { seq: evidenceSeq() },
    });
    expect((await register(acme, ACME_CODE)).json()).toMatchObject({ status: 403, code: 'HUB_NOT_OWNER' });
    expect((await register(acme, gtin('0950600013438'))).json()).toEqual({
      ...notOwnedProblem(
        `Product code ${gtin('0950600013438')} is under GS1 company prefix 9506000, which is registered for another organisation`,
      ),
      evidence: { seq: evidenceSeq() },
    });
  });

  it('refuses an unknown prefix, and changes nothing when the prefix already belongs to the organisation', async () => {
    const seq = lastAudit()!.seq;
    await expect(registry().move('1234567', 'BETA')).rejects.toMatchObject({
      code: 'HUB_PREFIX_UNKNOWN',
      status: 404,
      message: 'Prefix 1234567 is not registered',
    });
    expect(await registry().move('9506000', 'BETA')).toEqual({
      prefix: '9506000',
      from: 'BETA',
      to: 'BETA',
      products: 0,
    });
    expect(lastAudit()!.seq).toBe(seq);
  });
});

describe('PrefixRegistry.remove', () => {
  it('refuses while products are registered under the prefix, and removes one without products', async () => {
    await expect(registry().remove('9506000')).rejects.toMatchObject({
      code: 'HUB_PREFIX_IN_USE',
      status: 409,
      message: `Products are registered under 9506000 (${ACME_CODE}, ${gtin('0950600013437')}, ${gtin('1950600013435')}); \`prefix move\` gives them to another organisation`,
    });
    expect(await registry().remove('4012345')).toEqual({ prefix: '4012345', org: 'BETA', since: expect.any(String) });
    expect(lastAudit()!.body).toMatchObject({ action: 'remove', prefix: '4012345', org: 'BETA' });
    expect(
      registry()
        .list('BETA')
        .map((p) => p.prefix),
    ).toEqual(['9506000']);
    await expect(registry().remove('4012345')).rejects.toMatchObject({ code: 'HUB_PREFIX_UNKNOWN' });
  });
});

describe('the prefix audit log', () => {
  it('holds every change, hash-chained', () => {
    expect(hub.store.prefixes.audit.verify()).toMatchObject({ ok: true, checked: 6 });
    expect([...hub.store.prefixes.audit.entries()].map((e) => `${e.body.action} ${e.body.prefix}`)).toEqual([
      'add 4012345',
      'add 9506000',
      'add 50123',
      'add 70123',
      'move 9506000',
      'remove 4012345',
    ]);
  });
});
