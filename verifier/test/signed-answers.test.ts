import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyDigest, checkContentDigest, contentDigest } from '../../common/src/content-digest.ts';
import {
  algorithmForKey,
  type HttpMessage,
  parseSignatures,
  verifySignature,
} from '../../common/src/http-signatures/index.ts';
import { fromPem } from '../../common/src/pki.ts';
import { keyidOf } from '../../common/src/signed-request.ts';
import { CODE, type NodeAnswer, type NodeHarness, startNodeHarness } from './fixtures.ts';

// Pharmacies may ask for signed answers (RFC 9421 §5.1 Accept-Signature): the node signs with the
// key of its CA-issued certificate, and the pharmacy checks the signature with that certificate,
// here with the project's RFC 9421 verifier and with openssl.

const ASK = 'answer=("@status" "content-digest" "@method";req "@path";req);created';
let h: NodeHarness;
let certificate: X509Certificate;

beforeAll(async () => {
  h = await startNodeHarness({ name: 'signed-answers', seed: 100 });
  const res = await h.send('/v1/node/certificate', { bearer: '' });
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('application/pem-certificate-chain');
  certificate = new X509Certificate(fromPem(res.body.toString(), 'CERTIFICATE')[0]!);
}, 90_000);

afterAll(() => h?.close());

interface Answer extends NodeAnswer {
  request: HttpMessage;
}

async function call(path: string, body: unknown, accept: string | null = ASK): Promise<Answer> {
  const headers: Record<string, string> = accept ? { 'accept-signature': accept } : {};
  const a = await h.send(path, { body, headers });
  const sent = { 'content-type': 'application/json', authorization: `Bearer ${h.token}`, ...headers };
  return {
    ...a,
    request: {
      method: 'POST',
      targetUri: `${h.node.url}${path}`,
      headers: { ...sent, host: new URL(h.node.url).host },
    },
  };
}

/** What a pharmacy checks: the digest of the body it got, and the signature with the node's certificate. */
function check(a: Answer): { label: string; base: string } {
  const digest = checkContentDigest(a.headers['content-digest'], bodyDigest(a.body));
  if (!digest.ok) throw new Error(digest.reason);
  const message: HttpMessage = { status: a.status, headers: a.headers, request: a.request };
  const [signature] = parseSignatures(message);
  expect(signature!.params.get('keyid')).toBe(keyidOf(certificate));
  const base = verifySignature(message, signature!, certificate.publicKey, algorithmForKey(certificate.publicKey)!);
  return { label: signature!.label, base };
}

const pack = (serial: string) => ({ productCode: CODE, serial, batch: 'B1', expiry: '291200' });

describe('an answer asked for with Accept-Signature', () => {
  it('is signed by the node over its status, digest and the request, and verifies with the node certificate', async () => {
    const a = await call('/v1/packs/verify', pack(h.serials[0]!));
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body.toString())).toEqual({
      returnCode: 'ACTIVE',
      state: 'ACTIVE',
      detail: 'the pack is active',
      operation: 'verify',
      ...pack(h.serials[0]!),
    });
    expect(a.headers['content-digest']).toBe(contentDigest(a.body));
    const { label, base } = check(a);
    expect(label).toBe('answer');
    const created = Number(/;created=(\d+)/.exec(a.headers['signature-input']!)![1]);
    expect(base).toBe(
      [
        '"@status": 200',
        `"content-digest": ${a.headers['content-digest']}`,
        '"@method";req: POST',
        '"@path";req: /v1/packs/verify',
        `"@signature-params": ("@status" "content-digest" "@method";req "@path";req);created=${created};keyid="${keyidOf(certificate)}";alg="ecdsa-p256-sha256"`,
      ].join('\n'),
    );
    // The certificate is the CA's, as openssl sees it; and openssl verifies the signature too.
    const files = mkdtempSync(join(h.dir, 'openssl-'));
    writeFileSync(join(files, 'chain.pem'), h.hub.t.ca.chainPem());
    writeFileSync(join(files, 'node.pem'), certificate.toString());
    writeFileSync(join(files, 'node-key.pem'), certificate.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(files, 'base.txt'), base);
    writeFileSync(join(files, 'signature.der'), derSignature(a.headers.signature!));
    expect(
      execFileSync('openssl', ['verify', '-CAfile', join(files, 'chain.pem'), join(files, 'node.pem')]).toString(),
    ).toContain(': OK');
    const verified = execFileSync('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      join(files, 'node-key.pem'),
      '-signature',
      join(files, 'signature.der'),
      join(files, 'base.txt'),
    ]).toString();
    expect(verified.trim()).toBe('Verified OK');
  });

  it('signs single and bulk verification and state changes alike, their bodies repeating what they answer', async () => {
    const bulk = await call('/v1/packs/verify-bulk', { packs: [pack(h.serials[1]!), pack('NOSUCH1')] });
    check(bulk);
    expect(JSON.parse(bulk.body.toString()).results.map((r: { serial: string }) => r.serial)).toEqual([
      h.serials[1],
      'NOSUCH1',
    ]);
    const supply = await call('/v1/packs/supply', { txId: 'signed-1', ...pack(h.serials[2]!) });
    check(supply);
    expect(JSON.parse(supply.body.toString())).toMatchObject({
      txId: 'signed-1',
      operation: 'supply',
      ...pack(h.serials[2]!),
      outcome: 'accepted',
    });
    const bulkChange = await call('/v1/packs/destroy/bulk', {
      packs: [{ txId: 'signed-2', ...pack(h.serials[3]!) }],
    });
    check(bulkChange);
    expect(JSON.parse(bulkChange.body.toString()).results[0]).toMatchObject({ txId: 'signed-2', operation: 'destroy' });
    // A problem is signed too, once the caller's token is accepted.
    const problem = await call('/v1/packs/verify', pack('bad serial'));
    expect(problem.status).toBe(400);
    check(problem);
  });

  it('no longer verifies once its body or its status is changed', async () => {
    const a = await call('/v1/packs/verify', pack('NOSUCH2'));
    check(a);
    const forged = Buffer.from(a.body.toString().replace('SERIAL_UNKNOWN', 'ACTIVE'));
    expect(() => check({ ...a, body: forged })).toThrow('digest does not match the body');
    expect(() =>
      check({ ...a, body: forged, headers: { ...a.headers, 'content-digest': contentDigest(forged) } }),
    ).toThrow('does not verify');
    expect(() => check({ ...a, status: 202 })).toThrow('does not verify');
  });

  it('honours the requested label, components, nonce and tag, and always covers the default set', async () => {
    const a = await call(
      '/v1/packs/verify',
      pack(h.serials[4]!),
      'pharmacy-7=("@query";req "content-type");nonce="n-123";tag="till-3";created;keyid="' +
        keyidOf(certificate) +
        '"',
    );
    const { label, base } = check(a);
    expect(label).toBe('pharmacy-7');
    expect(base.split('\n').at(-1)).toMatch(
      /^"@signature-params": \("@status" "content-digest" "@method";req "@path";req "@query";req "content-type"\);created=\d+;keyid="[0-9a-f]{64}";alg="ecdsa-p256-sha256";nonce="n-123";tag="till-3"$/,
    );
  });

  it('is refused (400) when it asks for what the node cannot sign, before the request is acted on', async () => {
    const refused = (detail: string) => ({
      status: 400,
      contentType: 'application/problem+json; charset=utf-8',
      signed: false,
      problem: {
        type: 'https://packtrust.dev/problems/node-accept-signature-invalid',
        title: 'The node cannot make the signature Accept-Signature asks for',
        status: 400,
        detail,
        code: 'NODE_ACCEPT_SIGNATURE_INVALID',
      },
    });
    const ask = async (accept: string) => {
      const a = await call('/v1/packs/supply', { txId: `refused-${Math.random()}`, ...pack(h.serials[5]!) }, accept);
      return {
        status: a.status,
        contentType: a.headers['content-type'],
        signed: 'signature' in a.headers,
        problem: JSON.parse(a.body.toString()),
      };
    };
    expect(await ask('answer=("authorization";req)')).toEqual(
      refused(
        'The node cannot cover "authorization";req; it covers "@status" "content-digest" "@method";req "@path";req "content-type" "@request-target";req "@query";req "content-type";req (the first 4 always)',
      ),
    );
    // The authority would be the Host the caller sent, signed as the node's own name.
    expect((await ask('answer=("@authority";req)')).problem.detail).toMatch(/^The node cannot cover "@authority";req;/);
    expect(await ask('a=("@status"), b=("@status")')).toEqual(
      refused('Ask for one signature; Accept-Signature names 2'),
    );
    expect(await ask('answer="@status"')).toEqual(refused('Accept-Signature "answer" is not an inner list'));
    expect(await ask('answer=(@status')).toEqual(
      refused('Accept-Signature is not a structured field dictionary (RFC 8941)'),
    );
    expect((await ask('answer=();expires=1')).problem.detail).toMatch(
      /^The node cannot honour the parameter expires=1/,
    );
    expect((await ask('answer=();keyid="someone-else"')).problem.code).toBe('NODE_ACCEPT_SIGNATURE_INVALID');
    // None of those supplies was made.
    expect(h.hub.store.packs.get(CODE + h.serials[5])).toMatchObject({ s: 'ACTIVE' });
  });
});

describe('an answer not asked to be signed', () => {
  it('carries no signature and no digest', async () => {
    const a = await call('/v1/packs/verify', pack(h.serials[6]!), null);
    expect(a.status).toBe(200);
    expect(Object.keys(a.headers).filter((h) => /signature|digest/.test(h))).toEqual([]);
  });
});

/** An RFC 9421 ECDSA signature (r ‖ s, §3.3.4) from a Signature field, as the DER openssl reads. */
function derSignature(field: string): Buffer {
  const raw = Buffer.from(/=:([^:]+):/.exec(field)![1]!, 'base64');
  const integer = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b[i]! & 0x80 ? Buffer.concat([Buffer.from([0]), b.subarray(i)]) : b.subarray(i);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const seq = Buffer.concat([integer(raw.subarray(0, 32)), integer(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, seq.length]), seq]);
}
