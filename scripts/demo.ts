/**
 * `npm run demo`: the end-to-end story against the stack `npm start` runs, each step printed and
 * checked. It plays every user in turn: onboarding staff (CA admin API with the operator
 * certificate, `packtrust-gateway prefix add` and `client add`), a manufacturer (signed
 * mutual-TLS uploads with receipts) and pharmacies in two markets (OAuth tokens, verifier nodes).
 * Any step that does not behave as described stops the demo with a non-zero exit code.
 *
 * Each run onboards a new manufacturer with its own GS1 company prefix and product code, so the
 * demo can be repeated against the same stack. Its files (keys, certificates, receipts) go to
 * <data>/demo/<org>/.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { generateKeyAndCsr } from '../clients/keygen.ts';
import { generateClientKey, TokenClient } from '../clients/token-client.ts';
import { type Receipt, UploadClient, type UploadResponse } from '../clients/upload-client.ts';
import { encodeElementString, gs1CheckDigit } from '../common/src/gs1.ts';
import { toPem } from '../common/src/pki.ts';
import { loadStack } from './stack.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const PACKS = 10_000;
const EXPIRY = '301200';
const BATCH = 'DEMO-B1';

/** A step that did not behave as the story says. */
class Deviation extends Error {}

function check(condition: unknown, what: string, got?: unknown): asserts condition {
  if (!condition) throw new Deviation(got === undefined ? what : `${what}; got ${JSON.stringify(got)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value, for at most `ms`. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Deviation(`${what} did not happen within ${ms / 1000} s`);
    await sleep(100);
  }
}

let stepNo = 0;
function step(title: string): void {
  console.log(`\n${++stepNo}. ${title}`);
}
const say = (line: string) => console.log(`   ${line}`);

type Json = Record<string, unknown>;

async function call(
  dispatcher: Agent,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Json }> {
  const res = await request(url, {
    method,
    dispatcher,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let json: Json;
  try {
    json = text ? (JSON.parse(text) as Json) : {};
  } catch {
    json = { text };
  }
  return { status: res.statusCode, json };
}

/** A company prefix of this run: 10 digits in the GS1 range for examples (950), 7 of them random. */
function freshPrefix(): string {
  return `950${String(randomInt(0, 1e7)).padStart(7, '0')}`;
}

/** A product code under a 10-digit company prefix: indicator digit 0, a random item reference, the check digit. */
function gtinUnder(prefix: string): string {
  const body = `0${prefix}${String(randomInt(0, 100)).padStart(2, '0')}`;
  return `${body}${gs1CheckDigit(body)}`;
}

function csprngSerials(n: number): string[] {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789';
  const out = new Set<string>();
  while (out.size < n) out.add(Array.from(randomBytes(12), (b) => alphabet[b % alphabet.length]).join(''));
  return [...out];
}

async function main(): Promise<void> {
  const stack = loadStack();
  const { urls } = stack;
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      throw new Deviation(`cannot read the ${what} ${file}: start the stack first with \`npm start\``);
    }
  };
  const chainPem = read(stack.chainFile, 'CA chain');
  const org = `DEMO-PHARMA-${randomBytes(3).toString('hex').toUpperCase()}`;
  const workDir = join(stack.dataDir, 'demo', org);
  mkdirSync(join(workDir, 'receipts'), { recursive: true, mode: 0o700 });
  const publicAgent = new Agent({ connect: { ca: chainPem } });
  const operatorAgent = new Agent({
    connect: {
      ca: chainPem,
      cert: read(stack.operatorCertFile, 'operator certificate'),
      key: read(stack.operatorKeyFile, 'operator key'),
    },
  });
  const closers: (() => unknown)[] = [() => publicAgent.close(), () => operatorAgent.close()];
  /** `packtrust-gateway` as onboarding staff run it on the hub machine; its standard output. */
  const gatewayCli = async (...args: string[]): Promise<string> => {
    const { stdout } = await promisify(execFile)(TSX, [
      join(ROOT, 'gateway/src/cli.ts'),
      '--data-dir',
      stack.gatewayDir,
      ...args,
    ]).catch((err: Error & { stderr?: string }) => {
      throw new Deviation(`packtrust-gateway ${args.slice(0, 2).join(' ')} failed: ${err.stderr ?? err.message}`);
    });
    return stdout;
  };

  try {
    step('The stack is up');
    for (const [name, url] of [
      ['CA', urls.caPublic],
      ['gateway', urls.gateway],
      ...urls.nodes.map((n) => [`verifier ${n.nodeId}`, n.url] as const),
    ] as const) {
      const health = await call(publicAgent, 'GET', `${url}/health`).catch((err: Error) => {
        throw new Deviation(`${name} at ${url} does not answer (${err.message}): is \`npm start\` running?`);
      });
      check(health.status === 200, `${name} is healthy`, health.json);
      say(`${name.padEnd(14)} ${url}  ${health.json.status}`);
    }

    step(`Onboarding staff issue a manufacturer certificate for ${org}`);
    const maker = await generateKeyAndCsr();
    say('the manufacturer made a P-256 key and a CSR (the key never leaves it)');
    const issued = await call(operatorAgent, 'POST', `${urls.caAdmin}/admin/certificates`, {
      csr: toPem(maker.csr, 'CERTIFICATE REQUEST'),
      profile: 'manufacturer',
      org,
      name: `${org} packaging line`,
    });
    check(issued.status === 201, 'the CA issues the certificate', issued.json);
    const certificate = issued.json.certificate as Json;
    const serialHex = certificate.serial as string;
    const certPem = `${certificate.certificatePem}${issued.json.chainPem}`;
    writeFileSync(join(workDir, 'manufacturer.pem'), certPem);
    writeFileSync(join(workDir, 'manufacturer.key.pem'), maker.keyPem, { mode: 0o600 });
    say(`issued serial ${serialHex} to organisation ${certificate.org}, valid to ${certificate.notAfter}`);

    const prefix = freshPrefix();
    step(`Onboarding staff register the GS1 company prefix ${prefix} for ${org}`);
    const registered = JSON.parse(await gatewayCli('prefix', 'add', org, prefix)) as Json;
    check(registered.prefix === prefix && registered.org === org, 'the hub registers the prefix', registered);
    say(`packtrust-gateway prefix add ${org} ${prefix}: only ${org} may register product codes under it`);

    step('Onboarding staff register a pharmacy client in each market (private_key_jwt)');
    const pharmacies: Record<'DE' | 'FR', { token: string; clientId: string }> = {} as never;
    for (const market of ['DE', 'FR'] as const) {
      const { privateJwk, jwks } = await generateClientKey();
      const jwksFile = join(workDir, `pharmacy-${market}.jwks.json`);
      writeFileSync(jwksFile, JSON.stringify(jwks));
      writeFileSync(join(workDir, `pharmacy-${market}.key.json`), JSON.stringify(privateJwk), { mode: 0o600 });
      const location = `${market}-APO-${randomBytes(2).toString('hex').toUpperCase()}`;
      const stdout = await gatewayCli(
        'client',
        'add',
        '--market',
        market,
        '--role',
        'pharmacy',
        '--location',
        location,
        '--org',
        `${location}-ORG`,
        '--jwks',
        jwksFile,
      );
      const clientId = (JSON.parse(stdout) as { clientId: string }).clientId;
      const tokens = new TokenClient({ issuer: urls.oauthIssuer, clientId, privateJwk, ca: chainPem });
      closers.push(() => tokens.close());
      const token = await tokens.token();
      const claims = JSON.parse(Buffer.from(token.accessToken.split('.')[1]!, 'base64url').toString()) as Json;
      check(
        claims.aud === `urn:packtrust:verifier:${market}`,
        `the ${market} token is for the ${market} verifier`,
        claims,
      );
      pharmacies[market] = { token: token.accessToken, clientId };
      say(`${market}: client ${clientId} (location ${location}) got a token for ${claims.aud}, role ${claims.role}`);
    }

    step(`The manufacturer uploads a product for DE and FR and a batch of ${PACKS.toLocaleString('en')} packs`);
    const upload = new UploadClient({ baseUrl: urls.gateway, certPem, keyPem: maker.keyPem, caPem: chainPem });
    closers.push(() => upload.close());
    const keep = (name: string, res: UploadResponse) => {
      check(res.receipt?.verified, `the hub answers ${name} with a signed receipt that verifies`, res.status);
      writeFileSync(join(workDir, 'receipts', `${name}.json`), `${JSON.stringify(res.receipt as Receipt, null, 2)}\n`);
    };
    const productJson = (productCode: string) =>
      JSON.stringify({
        productCode,
        name: 'Demoxan 20 mg film-coated tablets',
        commonName: 'demoxanide',
        form: 'film-coated tablet',
        strength: '20 mg',
        packSize: 28,
        markets: ['DE', 'FR'],
      });
    const outside = gtinUnder('9519000000');
    const foreign = await upload.write('POST', '/v1/products', productJson(outside));
    const notOwned = foreign.json<Json>();
    check(
      foreign.status === 403 && notOwned.code === 'HUB_PREFIX_NOT_OWNED',
      'a product code outside its prefix is refused',
      notOwned,
    );
    say(`product ${outside} (not under ${prefix}) -> ${foreign.status} ${notOwned.code}`);
    const gtin = gtinUnder(prefix);
    const product = await upload.write('POST', '/v1/products', productJson(gtin));
    check(product.status === 201, 'the product is registered', product.json());
    keep('product', product);
    say(`product ${gtin} registered for DE and FR (signed RFC 9421 request over mutual TLS)`);
    const health = async (nodeId: string) =>
      (await call(publicAgent, 'GET', `${urls.nodes.find((n) => n.nodeId === nodeId)!.url}/health`)).json;
    const packsBefore = Object.fromEntries(
      await Promise.all(urls.nodes.map(async (n) => [n.nodeId, (await health(n.nodeId)).packs as number])),
    );
    const serials = csprngSerials(PACKS);
    const started = performance.now();
    const batch = await upload.write(
      'POST',
      `/v1/products/${gtin}/batches/${BATCH}/packs?expiry=${EXPIRY}`,
      serials.join('\n'),
      { contentType: 'text/plain' },
    );
    check(batch.status === 201, 'the batch is accepted', batch.json());
    keep('batch', batch);
    const report = batch.json<{ randomisation: { verdict: string; guessProbability: number } }>().randomisation;
    say(
      `batch ${BATCH}: ${PACKS} packs accepted in ${(performance.now() - started).toFixed(0)} ms; ` +
        `randomisation ${report.verdict}, guess probability ${report.guessProbability.toExponential(2)}`,
    );
    say(`receipts kept in ${join(workDir, 'receipts')}`);
    for (const n of urls.nodes) {
      await eventually(`replication of the batch to ${n.nodeId}`, async () =>
        ((await health(n.nodeId)).packs as number) >= packsBefore[n.nodeId]! + PACKS ? true : undefined,
      );
    }
    say(`every verifier node has the ${PACKS} packs: ${urls.nodes.map((n) => n.nodeId).join(', ')}`);

    const node = (nodeId: string) => urls.nodes.find((n) => n.nodeId === nodeId)!.url;
    const pharmacy = (market: 'DE' | 'FR') => ({ authorization: `Bearer ${pharmacies[market].token}` });
    const pack = { productCode: gtin, serial: serials[0]!, batch: BATCH, expiry: EXPIRY };
    const verify = (nodeId: string, market: 'DE' | 'FR', body: Json) =>
      call(publicAgent, 'POST', `${node(nodeId)}/v1/packs/verify`, body, pharmacy(market));
    const change = (op: string, body: Json) =>
      call(publicAgent, 'POST', `${node('de-1')}/v1/packs/${op}`, body, pharmacy('DE'));

    step('A DE pharmacy scans a pack at verifier de-1');
    const dataMatrix = encodeElementString(pack, { symbologyId: true });
    const scanned = await verify('de-1', 'DE', { dataMatrix });
    check(
      scanned.status === 200 && scanned.json.returnCode === 'ACTIVE' && scanned.json.state === 'ACTIVE',
      'the pack verifies as active',
      scanned.json,
    );
    say(`Data Matrix ${JSON.stringify(dataMatrix)} -> ${scanned.json.returnCode}, state ${scanned.json.state}`);

    step('The pharmacy supplies it to a patient at de-1');
    const supplied = await change('supply', { txId: `demo-${org}-supply`, ...pack });
    check(
      supplied.json.outcome === 'accepted' && supplied.json.state === 'SUPPLIED',
      'the hub accepts the supply',
      supplied.json,
    );
    say(`${supplied.json.outcome}: ${supplied.json.code}, state ${supplied.json.state} (decided by the hub)`);

    step('A FR pharmacy scans the same pack at verifier fr-1');
    const inFrance = await eventually('the supply reaching fr-1', async () => {
      const r = await verify('fr-1', 'FR', pack);
      return r.json.state === 'SUPPLIED' ? r : undefined;
    });
    check(inFrance.json.returnCode === 'DECOMMISSIONED', 'fr-1 answers decommissioned', inFrance.json);
    say(`fr-1 -> ${inFrance.json.returnCode}, state ${inFrance.json.state}`);

    step('The DE pharmacy undoes the supply (same client and location, within 10 days)');
    const undone = await change('undo', { txId: `demo-${org}-undo`, ...pack });
    check(undone.json.outcome === 'accepted' && undone.json.state === 'ACTIVE', 'the undo is accepted', undone.json);
    say(`${undone.json.outcome}: state ${undone.json.state}`);
    const back = await eventually('the undo reaching fr-1', async () => {
      const r = await verify('fr-1', 'FR', pack);
      return r.json.state === 'ACTIVE' ? r : undefined;
    });
    say(`fr-1 -> ${back.json.returnCode} again`);

    step("Verifier fr-1's own certificate tries to act beyond its rights at the hub");
    // An insider with a valid certificate: the FR node signs its own requests to the hub. A node
    // relays what pharmacies did, with their access tokens; it cannot act in another market, in
    // another client's name, or back-date an event (ARCHITECTURE.md, "Who acted").
    const frKeys = join(stack.verifierDir, 'fr-1', 'keys');
    const insider = new UploadClient({
      baseUrl: urls.gateway,
      certPem: read(join(frKeys, 'node.pem'), 'fr-1 certificate'),
      keyPem: read(join(frKeys, 'node.key.pem'), 'fr-1 key'),
      caPem: chainPem,
    });
    closers.push(() => insider.close());
    let deOnly = gtinUnder(prefix);
    while (deOnly === gtin) deOnly = gtinUnder(prefix);
    const deProduct = await upload.write(
      'POST',
      '/v1/products',
      JSON.stringify({
        productCode: deOnly,
        name: 'Demoxan 40 mg film-coated tablets',
        commonName: 'demoxanide',
        form: 'film-coated tablet',
        strength: '40 mg',
        packSize: 28,
        markets: ['DE'],
      }),
    );
    check(deProduct.status === 201, 'a second product, sold only in DE, is registered', deProduct.json());
    const target = { productCode: gtin, serial: serials[2]!, batch: BATCH, expiry: EXPIRY };
    const event = (over: Json) => ({
      txId: `demo-${org}-insider-${randomBytes(3).toString('hex')}`,
      productCode: gtin,
      serial: target.serial,
      op: 'supply',
      at: Date.now(),
      token: pharmacies.FR.token,
      ...over,
    });
    const refusals: number[] = [];
    const attempt = async (what: string, path: string, body: Json, code: string) => {
      const res = await insider.write('POST', path, JSON.stringify(body));
      const problem = res.json<Json>();
      check(
        res.status === 403 && problem.code === code && res.receipt?.verified === true,
        `${what}: refused with ${code} and a signed answer`,
        problem,
      );
      const seq = (problem.evidence as { seq: number }).seq;
      refusals.push(seq);
      say(`${what} -> 403 ${code} (evidence record ${seq})`);
    };
    await attempt(
      "supply in the DE pharmacy's name, with its captured token",
      '/v1/packs/events',
      { events: [event({ token: pharmacies.DE.token })] },
      'HUB_WRONG_MARKET',
    );
    await attempt(
      `supply a pack of ${deOnly}, sold only in DE`,
      '/v1/packs/events',
      { events: [event({ productCode: deOnly })] },
      'HUB_WRONG_MARKET',
    );
    await attempt(
      'supply back-dated by 11 days',
      '/v1/packs/events',
      { events: [event({ at: Date.now() - 11 * 86_400_000 })] },
      'HUB_EVENT_TIME_INVALID',
    );
    await attempt(
      `raise an alert on ${deOnly}`,
      '/v1/alerts',
      {
        alerts: [
          {
            id: randomBytes(8).toString('hex'),
            code: 'A3',
            returnCode: 'SERIAL_UNKNOWN',
            detail: 'serial is not registered for this product',
            market: 'FR',
            nodeId: 'fr-1',
            pack: { productCode: deOnly, serial: 'INVENTED', batch: BATCH, expiry: EXPIRY },
            raisedAt: new Date().toISOString(),
            token: pharmacies.FR.token,
          },
        ],
      },
      'HUB_WRONG_MARKET',
    );
    for (const n of urls.nodes) {
      const r = await verify(n.nodeId, n.market as 'DE' | 'FR', target);
      check(r.json.state === 'ACTIVE', `the pack is still active at ${n.nodeId}`, r.json);
    }
    say(`the pack is still ACTIVE at ${urls.nodes.map((n) => n.nodeId).join(', ')}`);
    say(`refusals kept as evidence: records ${refusals.join(', ')}`);

    step('A pack that does not exist is scanned at de-1');
    const fake = { ...pack, serial: `FAKE${randomBytes(4).toString('hex').toUpperCase()}` };
    const unknown = await verify('de-1', 'DE', fake);
    const alert = unknown.json.alert as { id: string; code: string } | undefined;
    check(
      unknown.json.returnCode === 'SERIAL_UNKNOWN' && alert?.code === 'A3',
      'it is unknown and raises A3',
      unknown.json,
    );
    say(`serial ${fake.serial} -> ${unknown.json.returnCode}, alert ${alert.code} (${alert.id})`);
    const seen = await eventually('the alert reaching the manufacturer', async () => {
      const res = await upload.get(`/v1/alerts?productCode=${gtin}`);
      const found = res.json<{ alerts: Json[] }>().alerts.find((a) => a.id === alert.id);
      return found;
    });
    check(seen.raisedBy === undefined, 'the manufacturer does not learn who scanned it', seen);
    say(
      `the manufacturer reads it at the hub: ${seen.code} in ${seen.market} from reporter ${seen.reporter}, ${seen.detail}`,
    );

    step('The manufacturer recalls the batch');
    const recall = await upload.write(
      'POST',
      `/v1/products/${gtin}/batches/${BATCH}/recall`,
      JSON.stringify({ reason: 'demo: out-of-specification assay' }),
    );
    check(recall.status === 200, 'the recall is accepted', recall.json());
    keep('recall', recall);
    const recalled = await eventually('the recall reaching de-1', async () => {
      const r = await verify('de-1', 'DE', { ...pack, serial: serials[1]! });
      return r.json.inactiveReason === 'RECALLED' ? r : undefined;
    });
    check(recalled.json.alert === undefined, 'a recalled pack raises no alert', recalled.json);
    say(`de-1 -> ${recalled.json.returnCode} (${recalled.json.inactiveReason}): ${recalled.json.detail}`);

    step("Onboarding staff revoke the manufacturer's certificate");
    // The CRL the gateway holds is on its operators' /metrics (an operator certificate).
    const gatewayCrl = async () => {
      const metrics = await call(operatorAgent, 'GET', `${urls.gateway}/metrics`);
      const held = /^packtrust_crl_number (-?\d+)$/m.exec(String(metrics.json.text));
      check(metrics.status === 200 && held !== null, "the gateway's metrics show the CRL it holds", metrics.json);
      return { number: Number(held![1]) };
    };
    const crlBefore = (await gatewayCrl()).number;
    const revoked = await call(operatorAgent, 'POST', `${urls.caAdmin}/admin/certificates/${serialHex}/revoke`, {
      reason: 'keyCompromise',
    });
    check(revoked.status === 200 && revoked.json.status === 'revoked', 'the CA revokes it', revoked.json);
    const revokedAt = performance.now();
    const crl = await eventually('the gateway picking up the new CRL', async () => {
      const c = await gatewayCrl();
      return c.number > crlBefore ? c : undefined;
    });
    say(
      `revoked (keyCompromise); the gateway holds CRL ${crl.number} after ${((performance.now() - revokedAt) / 1000).toFixed(1)} s`,
    );
    const refused = await upload.write(
      'POST',
      `/v1/products/${gtin}/batches/DEMO-B2/packs?expiry=${EXPIRY}`,
      csprngSerials(10).join('\n'),
      { contentType: 'text/plain' },
    );
    const problem = refused.json<Json>();
    check(refused.status === 401 && refused.receipt === undefined, 'the next upload is refused', problem);
    say(`next upload -> ${refused.status} ${problem.code}: ${problem.detail}`);

    console.log(`\nThe story ran end to end. Files of this run: ${workDir}`);
  } finally {
    for (const close of closers.reverse()) await close();
  }
}

main().catch((err: unknown) => {
  console.error(`\nDEMO FAILED${stepNo ? ` at step ${stepNo}` : ''}: ${err instanceof Error ? err.message : err}`);
  if (!(err instanceof Deviation) && err instanceof Error && err.stack) console.error(err.stack);
  process.exit(1);
});
