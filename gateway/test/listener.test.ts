import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postHead, rawRequest, TIMED_OUT } from '../../common/test/fixtures/raw-http.ts';
import { type Credential, startTestHub, type TestHub } from './fixtures.ts';

// What the gateway's listener lets a client do before it knows who the client is, and how long
// it waits for anyone: each test sends what an attacker would, over real TLS.

let hub: TestHub;
let maker: Credential;

beforeAll(async () => {
  hub = await startTestHub({
    timeouts: { headersTimeoutMs: 1500, requestTimeoutMs: 3000, keepAliveTimeoutMs: 1000, idleTimeoutMs: 10_000 },
  });
  maker = await hub.credential('manufacturer', 'ACME');
}, 60_000);
afterAll(() => hub?.close());

const BIG = 60 * 1024 * 1024;
const problem = (code: string, status: number, title: string, detail: string) => ({
  type: `https://packtrust.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
  title,
  status,
  detail,
  code,
});
const certificateRequired = problem(
  'HUB_CLIENT_CERT_REQUIRED',
  401,
  'A client certificate is required',
  'Present a client certificate issued by the packtrust CA (mutual TLS)',
);
const notFound = (method: string, path: string) =>
  problem('NOT_FOUND', 404, 'Not found', `No route for ${method} ${path}`);

describe('a large body sent without a client certificate', () => {
  it.each([
    ['POST', '/v1/products', 401, certificateRequired],
    ['POST', '/v1/products/09506000134352/batches/B1/packs?expiry=291200', 401, certificateRequired],
    ['POST', '/v1/packs/events', 401, certificateRequired],
    ['POST', '/v1/alerts', 401, certificateRequired],
    // Routes outside the groups, and no route at all: refused as early.
    ['PUT', '/v1/products', 404, notFound('PUT', '/v1/products')],
    ['POST', '/v1/feed/DE/snapshot', 404, notFound('POST', '/v1/feed/DE/snapshot')],
    ['POST', '/health', 404, notFound('POST', '/health')],
    ['POST', '/nowhere', 404, notFound('POST', '/nowhere')],
  ])('%s %s is answered %i before its body is read, and the connection closed', async (method, path, status, doc) => {
    const head = Buffer.from(
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${BIG}\r\n\r\n`,
    );
    // 16 KiB of the 60 MB sent, the rest held back: the answer comes while the client holds it.
    const answer = await rawRequest({
      url: hub.hubUrl,
      tls: { ca: hub.t.ca.chainPem() },
      head: Buffer.concat([head, Buffer.alloc(16 * 1024, 0x61)]),
    });
    expect(answer).toMatchObject({
      status,
      headers: { 'content-type': 'application/problem+json; charset=utf-8', connection: 'close' },
    });
    expect(JSON.parse(answer.body)).toEqual(doc);
  });

  it('is refused at /oauth, where clients authenticate in the body, from its announced length (64 KiB at most)', async () => {
    const answer = await rawRequest({
      url: hub.hubUrl,
      tls: { ca: hub.t.ca.chainPem() },
      head: postHead('/oauth/token', BIG, 16 * 1024, 'application/x-www-form-urlencoded'),
    });
    expect(answer).toMatchObject({ status: 413, headers: { connection: 'close' } });
    expect(JSON.parse(answer.body)).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });
});

describe('a client that sends slowly', () => {
  it('is answered 408 when its upload arrives one byte at a time, though it is an authenticated manufacturer', async () => {
    const answer = await rawRequest({
      url: hub.hubUrl,
      tls: { ca: hub.t.ca.chainPem(), cert: maker.certPem, key: maker.keyPem },
      head: postHead('/v1/products', 1000, 0),
      drip: { data: Buffer.alloc(1000, 0x61), everyMs: 20 },
    });
    expect(answer).toMatchObject({
      status: 408,
      headers: { 'content-type': 'application/problem+json; charset=utf-8', connection: 'close' },
    });
    expect(JSON.parse(answer.body)).toEqual(TIMED_OUT);
    expect(answer.dripped).toBeLessThan(500);
  });

  it('is answered 408 when its headers arrive one byte at a time', async () => {
    const answer = await rawRequest({
      url: hub.hubUrl,
      tls: { ca: hub.t.ca.chainPem() },
      head: 'POST /oauth/token HTTP/1.1\r\n',
      drip: { data: `Host: 127.0.0.1\r\nX-Slow: ${'a'.repeat(1000)}\r\n\r\n`, everyMs: 20 },
    });
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toEqual(TIMED_OUT);
    expect(answer.dripped).toBeLessThan(500);
  });

  it('loses a kept-alive connection it does not use', async () => {
    const answer = await rawRequest({
      url: hub.hubUrl,
      tls: { ca: hub.t.ca.chainPem() },
      head: 'GET /oauth/jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    });
    expect(answer).toMatchObject({ status: 200, headers: { connection: 'keep-alive' } });
  });
});
