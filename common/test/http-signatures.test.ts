import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bodyDigest, checkContentDigest, contentDigest } from '../src/content-digest.ts';
import {
  type HttpMessage,
  parseSignatures,
  type SignatureAlgorithm,
  SignatureError,
  signatureBase,
  signMessage,
  verifySignature,
} from '../src/http-signatures/index.ts';
import {
  REQUEST_BODY,
  RESPONSE_BODY,
  TEST_KEY_ECC_P256_PRIVATE,
  TEST_KEY_ECC_P256_PUBLIC,
  TEST_KEY_ED25519_PRIVATE,
  TEST_KEY_ED25519_PUBLIC,
  TEST_KEY_RSA_PSS_PUBLIC,
  TEST_SHARED_SECRET,
  testRequest,
  testResponse,
  VECTORS,
  type Vector,
} from './fixtures/rfc9421-appendix-b.ts';

const withSignature = (v: Vector, message = v.message()): HttpMessage => ({
  ...message,
  headers: { ...message.headers, 'signature-input': v.signatureInput, signature: v.signature },
});

describe('RFC 9421 Appendix B', () => {
  it.each(Object.values(VECTORS))('$name: the signature base matches byte for byte', (v) => {
    const [parsed] = parseSignatures(withSignature(v));
    expect(signatureBase(v.message(), parsed!.components, parsed!.params).base).toBe(v.base);
  });

  it.each([
    [VECTORS.b21, TEST_KEY_RSA_PSS_PUBLIC, 'rsa-pss-sha512'],
    [VECTORS.b22, TEST_KEY_RSA_PSS_PUBLIC, 'rsa-pss-sha512'],
    [VECTORS.b23, TEST_KEY_RSA_PSS_PUBLIC, 'rsa-pss-sha512'],
    [VECTORS.b24, TEST_KEY_ECC_P256_PUBLIC, 'ecdsa-p256-sha256'],
    [VECTORS.b26, TEST_KEY_ED25519_PUBLIC, 'ed25519'],
  ] as const)('%#: the published signature verifies', (v, pem, alg) => {
    const message = withSignature(v);
    const [parsed] = parseSignatures(message);
    expect(verifySignature(message, parsed!, createPublicKey(pem), alg as SignatureAlgorithm)).toBe(v.base);
  });

  it('B.2.5: the HMAC value matches (HMAC is not accepted by the gateway, but the base is shared)', () => {
    const mac = createHmac('sha256', Buffer.from(TEST_SHARED_SECRET, 'base64'))
      .update(VECTORS.b25.base)
      .digest('base64');
    expect(`sig-b25=:${mac}:`).toBe(VECTORS.b25.signature);
  });

  it('B.2.6: ed25519 signing reproduces the published signature exactly', () => {
    const signed = signMessage(testRequest(), {
      label: 'sig-b26',
      components: ['date', '@method', '@path', '@authority', 'content-type', 'content-length'],
      params: { created: 1618884473, keyid: 'test-key-ed25519' },
      key: createPrivateKey(TEST_KEY_ED25519_PRIVATE),
      alg: 'ed25519',
    });
    expect(signed.signatureInput).toBe(VECTORS.b26.signatureInput);
    expect(signed.signature).toBe(VECTORS.b26.signature);
  });

  it('B.2.4: ecdsa-p256-sha256 signing makes a signature the public key verifies (ECDSA is randomised)', () => {
    const signed = signMessage(testResponse(), {
      label: 'sig-b24',
      components: ['@status', 'content-type', 'content-digest', 'content-length'],
      params: { created: 1618884473, keyid: 'test-key-ecc-p256' },
      key: createPrivateKey(TEST_KEY_ECC_P256_PRIVATE),
      alg: 'ecdsa-p256-sha256',
    });
    expect(signed.signatureInput).toBe(VECTORS.b24.signatureInput);
    const message = {
      ...testResponse(),
      headers: { ...testResponse().headers, 'signature-input': signed.signatureInput, signature: signed.signature },
    };
    const [parsed] = parseSignatures(message);
    expect(verifySignature(message, parsed!, createPublicKey(TEST_KEY_ECC_P256_PUBLIC), 'ecdsa-p256-sha256')).toBe(
      VECTORS.b24.base,
    );
  });
});

describe('RFC 9530 Content-Digest', () => {
  it('computes the digests of the RFC 9421 examples', () => {
    expect(contentDigest(Buffer.from(REQUEST_BODY))).toBe(testRequest().headers['content-digest']);
    expect(contentDigest(Buffer.from(RESPONSE_BODY))).toBe(testResponse().headers['content-digest']);
    expect(contentDigest(Buffer.from(REQUEST_BODY), 'sha-256')).toBe(
      'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:',
    );
  });

  it('accepts a matching digest and refuses a changed body, bad syntax and unknown algorithms', () => {
    const body = Buffer.from(REQUEST_BODY);
    expect(checkContentDigest(contentDigest(body), bodyDigest(body))).toEqual({ ok: true, algorithm: 'sha-512' });
    expect(checkContentDigest(contentDigest(body), bodyDigest(Buffer.from('{"hello": "World"}')))).toMatchObject({
      ok: false,
    });
    expect(checkContentDigest('sha-512=not-bytes', bodyDigest(body))).toMatchObject({ ok: false });
    expect(checkContentDigest('md5=:AAAA:', bodyDigest(body))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('no supported'),
    });
    expect(checkContentDigest(undefined, bodyDigest(body))).toMatchObject({ ok: false });
  });
});

describe('signing and verifying', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const body = Buffer.from('{"products":[]}');
  const request = (): HttpMessage => ({
    method: 'POST',
    targetUri: 'https://hub.example/v1/products',
    headers: { 'content-type': 'application/json', 'content-digest': contentDigest(body) },
  });
  const signed = () => {
    const r = request();
    const s = signMessage(r, {
      label: 'sig1',
      components: ['@method', '@target-uri', 'content-digest', 'content-type'],
      params: { created: 1_800_000_000, keyid: 'abc', nonce: 'n-1' },
      key: privateKey,
      alg: 'ecdsa-p256-sha256',
    });
    return { ...r, headers: { ...r.headers, 'signature-input': s.signatureInput, signature: s.signature } };
  };

  it('verifies its own signature and refuses every tampered covered component', () => {
    const ok = signed();
    expect(() => verifySignature(ok, parseSignatures(ok)[0]!, publicKey, 'ecdsa-p256-sha256')).not.toThrow();
    const tampered: HttpMessage[] = [
      { ...ok, method: 'PUT' },
      { ...ok, targetUri: 'https://hub.example/v1/batches' },
      { ...ok, headers: { ...ok.headers, 'content-type': 'text/plain' } },
      { ...ok, headers: { ...ok.headers, 'content-digest': contentDigest(Buffer.from('other')) } },
      {
        ...ok,
        headers: { ...ok.headers, 'signature-input': String(ok.headers['signature-input']).replace('n-1', 'n-2') },
      },
    ];
    for (const m of tampered) {
      expect(() => verifySignature(m, parseSignatures(m)[0]!, publicKey, 'ecdsa-p256-sha256')).toThrow(SignatureError);
    }
  });

  it('refuses a missing covered field, a missing Signature and malformed fields with a reason', () => {
    const ok = signed();
    const noType = { ...ok, headers: { ...ok.headers, 'content-type': undefined } };
    expect(() => verifySignature(noType, parseSignatures(noType)[0]!, publicKey, 'ecdsa-p256-sha256')).toThrow(
      /no "content-type" field/,
    );
    expect(() => parseSignatures({ ...ok, headers: { ...ok.headers, signature: undefined } })).toThrow(
      /signature field is missing/,
    );
    expect(() => parseSignatures({ ...ok, headers: { ...ok.headers, signature: 'sig2=:AAAA:' } })).toThrow(
      /no matching Signature/,
    );
    expect(() => parseSignatures({ ...ok, headers: { ...ok.headers, 'signature-input': 'sig1=("@method' } })).toThrow(
      /not a valid/,
    );
  });

  it('binds a response to the request signature with "signature";req;key=…', () => {
    const req = signed();
    const { privateKey: gwKey, publicKey: gwPub } = generateKeyPairSync('ed25519');
    const response: HttpMessage = {
      status: 201,
      headers: { 'content-digest': contentDigest(Buffer.from('{}')) },
      request: req,
    };
    const s = signMessage(response, {
      label: 'receipt',
      components: ['@status', 'content-digest', ['signature', { req: true, key: 'sig1' }]],
      params: { created: 1_800_000_001, keyid: 'gw' },
      key: gwKey,
      alg: 'ed25519',
    });
    expect(s.base).toContain(`"signature";req;key="sig1": ${String(req.headers.signature).slice('sig1='.length)}`);
    const received = {
      ...response,
      headers: { ...response.headers, 'signature-input': s.signatureInput, signature: s.signature },
    };
    expect(() => verifySignature(received, parseSignatures(received)[0]!, gwPub, 'ed25519')).not.toThrow();
    const otherRequest = { ...received, request: { ...req, headers: { ...req.headers, signature: 'sig1=:AAAA:' } } };
    expect(() => verifySignature(otherRequest, parseSignatures(otherRequest)[0]!, gwPub, 'ed25519')).toThrow(
      SignatureError,
    );
  });
});
