/**
 * `npm run bench:oauth`: tokens per second from the real gateway (private_key_jwt, JWT access
 * tokens, LMDB-backed replay detection) against a bare fastify HTTPS route answering the same
 * requests in the same run; and token validation per second at the edge with jose, with and
 * without a cache of verified tokens, against a raw ES256 verify. Writes bench/results/oauth.json.
 */
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { generateClientKey, TokenClient } from '../../clients/token-client.ts';
import { writeBenchResults } from '../../common/src/bench.ts';
import { createHttpServer, listen } from '../../common/src/http.ts';
import { createLogger } from '../../common/src/log.ts';
import { ClientRegistry } from '../src/oauth/clients.ts';
import { startTestHub } from '../test/fixtures.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 32;
const VALIDATIONS = 20_000;
const dir = mkdtempSync(join(tmpdir(), 'packtrust-bench-oauth-'));

async function load(url: string, clientsFile: string, caFile: string) {
  const { stdout } = await promisify(execFile)(join(ROOT, 'node_modules/.bin/tsx'), [
    join(ROOT, 'gateway/bench/token-load.ts'),
    url,
    clientsFile,
    String(CONCURRENCY),
    String(SECONDS),
    caFile,
  ]);
  return JSON.parse(stdout) as { count: number; errors: number; perSecond: number; p50ms: number; p99ms: number };
}

async function main() {
  const hub = await startTestHub({
    perClient: { ratePerSecond: 1e6, burst: 1e6 },
    perAddress: { ratePerSecond: 1e6, burst: 1e6 },
  });
  const registry = new ClientRegistry(hub.store);
  const clients = [];
  for (let i = 0; i < 50; i++) {
    const { privateJwk, jwks } = await generateClientKey();
    const { clientId } = await registry.add({
      market: 'DE',
      role: 'pharmacy',
      location: `L${i}`,
      org: `APO-${i}`,
      jwks,
    });
    clients.push({ clientId, privateJwk });
  }
  const clientsFile = join(dir, 'clients.json');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(clientsFile, JSON.stringify(clients));
  writeFileSync(caFile, hub.t.ca.chainPem());

  const tokens = await load(`${hub.oauth.issuer}/token`, clientsFile, caFile);

  // Baseline: a bare fastify route on the same kind of TLS listener, answering a constant.
  const gwCert = await hub.credential('gateway', 'BASELINE', undefined, { dns: ['localhost'], ip: ['127.0.0.1'] });
  const bare = createHttpServer({
    logger: createLogger('bench', 'silent'),
    tls: { key: gwCert.keyPem, cert: gwCert.certPem },
    binaryContentTypes: ['application/x-www-form-urlencoded'],
  });
  bare.post('/token', async () => ({ access_token: 'x', token_type: 'Bearer', expires_in: 600 }));
  const bareUrl = await listen(bare, '127.0.0.1', 0);
  const baseline = await load(`${bareUrl}/token`, clientsFile, caFile);
  await bare.close();

  // Edge validation.
  const tokenClient = new TokenClient({
    issuer: hub.oauth.issuer,
    clientId: clients[0]!.clientId,
    privateJwk: clients[0]!.privateJwk,
    ca: hub.t.ca.chainPem(),
  });
  const token = (await tokenClient.token()).accessToken;
  await tokenClient.close();
  const jwksRes = await import('undici').then(async ({ fetch, Agent }) => {
    const dispatcher = new Agent({ connect: { ca: hub.t.ca.chainPem() } });
    const r = await fetch(`${hub.oauth.issuer}/jwks`, { dispatcher });
    const json = (await r.json()) as { keys: Record<string, unknown>[] };
    await dispatcher.close();
    return json;
  });
  const jwks = createLocalJWKSet(jwksRes as Parameters<typeof createLocalJWKSet>[0]);
  const options = { issuer: hub.oauth.issuer, audience: 'urn:packtrust:verifier:DE' };
  for (let i = 0; i < 500; i++) await jwtVerify(token, jwks, options);
  let t0 = performance.now();
  for (let i = 0; i < VALIDATIONS; i++) await jwtVerify(token, jwks, options);
  const joseRate = VALIDATIONS / ((performance.now() - t0) / 1000);

  const cache = new Map<string, { exp: number }>();
  const validateCached = async (t: string) => {
    const key = createHash('sha256').update(t).digest('base64url');
    const hit = cache.get(key);
    if (hit && hit.exp * 1000 > Date.now()) return hit;
    const { payload } = await jwtVerify(t, jwks, options);
    const entry = { exp: payload.exp! };
    cache.set(key, entry);
    return entry;
  };
  await validateCached(token);
  t0 = performance.now();
  for (let i = 0; i < VALIDATIONS * 10; i++) await validateCached(token);
  const cachedRate = (VALIDATIONS * 10) / ((performance.now() - t0) / 1000);

  const [h, p, s] = token.split('.') as [string, string, string];
  const jwk = jwksRes.keys[0]!;
  const publicKey = createPublicKey({ key: jwk as never, format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  t0 = performance.now();
  for (let i = 0; i < VALIDATIONS; i++)
    cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  const rawVerifyRate = VALIDATIONS / ((performance.now() - t0) / 1000);
  await hub.close();

  const results = {
    tokens: { ...tokens, concurrency: CONCURRENCY, seconds: SECONDS, target: 1000 },
    baselineBareFastifyRoute: baseline,
    ratioToBaseline: tokens.perSecond / baseline.perSecond,
    validation: {
      joseJwtVerifyPerSecond: joseRate,
      cachedPerSecond: cachedRate,
      rawEs256VerifyPerSecond: rawVerifyRate,
    },
    node: process.version,
  };
  const f = (n: number) => n.toFixed(0).padStart(9);
  console.log('\npacktrust OAuth benchmark');
  console.log(
    `token endpoint, private_key_jwt, ${CONCURRENCY} conns  ${f(tokens.perSecond)} tokens/s  p50 ${tokens.p50ms.toFixed(1)} ms  p99 ${tokens.p99ms.toFixed(1)} ms  errors ${tokens.errors}   target >= 1000`,
  );
  console.log(
    `baseline: bare fastify TLS route, same load   ${f(baseline.perSecond)} req/s     p50 ${baseline.p50ms.toFixed(1)} ms  p99 ${baseline.p99ms.toFixed(1)} ms   ratio ${(tokens.perSecond / baseline.perSecond).toFixed(2)}`,
  );
  console.log(`edge validation, jose jwtVerify               ${f(joseRate)} /s`);
  console.log(`edge validation, cache of verified tokens     ${f(cachedRate)} /s`);
  console.log(`baseline: raw ES256 crypto.verify             ${f(rawVerifyRate)} /s`);
  writeBenchResults('oauth', results);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
