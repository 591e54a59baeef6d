/**
 * Load generator for the token endpoint, in its own process: `concurrency` loops for `seconds`,
 * each request a client credentials grant with a freshly signed private_key_jwt assertion.
 * Usage: tsx token-load.ts URL CLIENTS_JSON CONCURRENCY SECONDS CA_PEM_FILE
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importJWK, type JWK, SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { latencySummary } from '../../common/src/bench.ts';

const [url, clientsFile, concurrencyArg, secondsArg, caFile] = process.argv.slice(2);
const clients = JSON.parse(readFileSync(clientsFile!, 'utf8')) as { clientId: string; privateJwk: JWK }[];
const keys = await Promise.all(clients.map(async (c) => ({ ...c, key: await importJWK(c.privateJwk, 'ES256') })));
const dispatcher = new Agent({ connect: { ca: readFileSync(caFile!, 'utf8') }, connections: Number(concurrencyArg) });
const deadline = performance.now() + Number(secondsArg) * 1000;
const latencies: number[] = [];
let errors = 0;
let next = 0;

async function once(): Promise<void> {
  const c = keys[next++ % keys.length]!;
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(c.clientId)
    .setSubject(c.clientId)
    .setAudience(url!)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(c.key);
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  }).toString();
  const start = performance.now();
  const res = await request(url!, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  await res.body.text();
  if (res.statusCode === 200) latencies.push(performance.now() - start);
  else errors++;
}

const t0 = performance.now();
await Promise.all(
  Array.from({ length: Number(concurrencyArg) }, async () => {
    while (performance.now() < deadline) await once();
  }),
);
console.log(JSON.stringify(latencySummary(latencies, errors, (performance.now() - t0) / 1000)));
await dispatcher.close();
