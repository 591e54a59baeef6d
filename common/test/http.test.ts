import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequest } from '../src/errors.ts';
import { createHttpServer, type HttpServer, listen } from '../src/http.ts';
import { createLogger } from '../src/log.ts';

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
