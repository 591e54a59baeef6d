import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequest } from '../src/errors.ts';
import { createHttpServer, type HttpServer, listen } from '../src/http.ts';
import { createLogger } from '../src/log.ts';
import { postHead, rawRequest, TIMED_OUT } from './fixtures/raw-http.ts';

let app: HttpServer;
let base: string;

beforeAll(async () => {
  app = createHttpServer({ logger: createLogger('test', 'silent'), bodyLimit: 64 });
  app.post(
    '/echo',
    { schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } } },
    async (req) => req.body,
  );
  app.get('/refuse', async () => {
    throw new BadRequest('that will not do', { items: [1, 2] });
  });
  app.get('/crash', async () => {
    throw new Error('secret internal detail');
  });
  base = await listen(app, '127.0.0.1', 0);
});
afterAll(() => app.close());

async function problem(path: string, init?: RequestInit) {
  const res = await fetch(base + path, init);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('createHttpServer', () => {
  it('renders a thrown PacktrustError as RFC 9457 problem details with its code and extensions', async () => {
    expect(await problem('/refuse')).toEqual({
      status: 400,
      body: {
        type: 'https://packtrust.dev/problems/bad-request',
        title: 'The request is malformed',
        status: 400,
        detail: 'that will not do',
        code: 'BAD_REQUEST',
        items: [1, 2],
      },
    });
  });

  it('turns schema validation, bad JSON, size and media type failures into problems', async () => {
    const post = (body: string, type = 'application/json') =>
      problem('/echo', { method: 'POST', headers: { 'content-type': type }, body });
    expect((await post('{"n":"x"}')).body).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    expect((await post('{nope')).body).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    expect((await post(`{"n":1,"pad":"${'x'.repeat(100)}"}`)).body).toMatchObject({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect((await post('n=1', 'text/csv')).body).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('answers unknown routes with 404 and hides internal errors behind a 500', async () => {
    expect((await problem('/nowhere')).body).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const crash = await problem('/crash');
    expect(crash.body).toMatchObject({ status: 500, code: 'INTERNAL' });
    expect(JSON.stringify(crash.body)).not.toContain('secret');
  });
});

describe('createHttpServer time limits and unwanted bodies', () => {
  let limited: HttpServer;
  let url: string;
  const timeouts = { headersTimeoutMs: 500, requestTimeoutMs: 1000, keepAliveTimeoutMs: 500, idleTimeoutMs: 5000 };
  beforeAll(async () => {
    limited = createHttpServer({
      logger: createLogger('test', 'silent'),
      bodyLimit: 64 * 1024 * 1024,
      binaryContentTypes: ['application/json'],
      timeouts,
    });
    limited.post('/upload', async (req) => ({ bytes: (req.body as Buffer).length }));
    limited.get('/ping', async () => ({ ok: true }));
    url = await listen(limited, '127.0.0.1', 0);
  });
  afterAll(() => limited.close());

  it('answers a request for no route 404 before reading its body, and closes the connection', async () => {
    // 60 MB announced, 16 KiB sent, the rest held back: the answer comes all the same.
    const answer = await rawRequest({ url, head: postHead('/nowhere', 60 * 1024 * 1024, 16 * 1024) });
    expect(answer).toMatchObject({ status: 404, headers: { connection: 'close' } });
    expect(answer.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(JSON.parse(answer.body)).toEqual({
      type: 'https://packtrust.dev/problems/not-found',
      title: 'Not found',
      status: 404,
      detail: 'No route for POST /nowhere',
      code: 'NOT_FOUND',
    });
  });

  it('answers 408 when a body arrives one byte at a time past the request deadline', async () => {
    const answer = await rawRequest({
      url,
      head: postHead('/upload', 1000, 0),
      drip: { data: Buffer.alloc(1000, 0x61), everyMs: 20 },
    });
    expect(answer).toMatchObject({
      status: 408,
      headers: { 'content-type': 'application/problem+json; charset=utf-8', connection: 'close' },
    });
    expect(JSON.parse(answer.body)).toEqual(TIMED_OUT);
    // 1000 bytes at one per 20 ms take 20 s; the deadline is 1 s.
    expect(answer.dripped).toBeLessThan(500);
  });

  it('answers 408 when headers arrive one byte at a time past the header deadline', async () => {
    const answer = await rawRequest({
      url,
      head: 'GET /ping HTTP/1.1\r\n',
      drip: { data: `Host: 127.0.0.1\r\nX-Slow: ${'a'.repeat(1000)}\r\n\r\n`, everyMs: 20 },
    });
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toEqual(TIMED_OUT);
    expect(answer.dripped).toBeLessThan(500);
  });

  it('closes a kept-alive connection that sends no next request', async () => {
    const answer = await rawRequest({ url, head: 'GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' });
    // The listener, not the client, ended it: the raw client waits for the close.
    expect(answer).toMatchObject({ status: 200, headers: { connection: 'keep-alive' }, body: '{"ok":true}' });
  });

  it('accepts a body that arrives in time', async () => {
    const answer = await rawRequest({
      url,
      head: Buffer.concat([postHead('/upload', 10, 0), Buffer.from('"abcdefgh"')]),
    });
    expect(answer).toMatchObject({ status: 200, body: '{"bytes":10}' });
  });
});
