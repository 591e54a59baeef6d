import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../ca/src/authority.ts';
import { generateKeyAndCsr } from '../../clients/keygen.ts';
import { UploadClient } from '../../clients/upload-client.ts';
import { writeBenchResults } from '../../common/src/bench.ts';
import { listen } from '../../common/src/http.ts';
import { createLogger } from '../../common/src/log.ts';
import { FMD_MARKETS } from '../../common/src/markets.ts';
import { encodedOnce, putIfAbsent, Store } from '../../common/src/store.ts';
import { ClientIdentifier } from '../src/client-identity.ts';
import { EvidenceNotary } from '../src/evidence-checkpoints.ts';
import { HubStore } from '../src/hub-store.ts';
import { OAuthService } from '../src/oauth/provider.ts';
import { openSigningKeys } from '../src/oauth/signing-keys.ts';
import { PrefixRegistry } from '../src/prefixes.ts';
import { createGatewayServer } from '../src/server.ts';
import { CaTrust } from '../src/trust.ts';

const PACKS = Number(process.env.BENCH_PACKS ?? 1_000_000);
const PRODUCT = '09506000134352';
/** The GS1 company prefix PRODUCT falls under, registered for the benchmark's manufacturer. */
const PREFIX = '9506000';
const dir = mkdtempSync(join(tmpdir(), 'packtrust-bench-ingest-'));
const logger = createLogger('bench', 'silent');

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 20);

function serials(n: number): string[] {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789';
  const out = new Set<string>();
  while (out.size < n) {
    const bytes = randomBytes(12 * 1024);
    for (let i = 0; i + 12 <= bytes.length && out.size < n; i += 12) {
      let s = '';
      for (let j = 0; j < 12; j++) s += alphabet[bytes[i + j]! % alphabet.length];
      out.add(s);
    }
  }
  return [...out];
}

async function credential(ca: CertificateAuthority, profile: string, org: string, extra: Record<string, unknown> = {}) {
  const { keyPem, csr } = await generateKeyAndCsr();
  const issued = await ca.issue({ csr, profile, org, ...extra }, 'bench');
  return { certPem: issued.certificatePem + issued.chainPem, keyPem, fingerprint: issued.record.fingerprint };
}

function rawLmdbBaseline(list: string[]): Promise<number> {
  const store = Store.open({ path: join(dir, 'raw') });
  const db = store.db<{ b: string; s: string }, string>('packs');
  const t0 = performance.now();
  return store
    .transaction(() => {
      // Written as the hub store writes packs (hub-store.ts registerPacks), without the rest of an
      // upload: keyed by the product code followed by the serial, the value encoded once, a pack
      // never overwritten.
      const pack = encodedOnce(db, { b: 'B1', s: 'ACTIVE' });
      for (const s of list) putIfAbsent(db, PRODUCT + s, pack);
    })
    .then(async () => {
      const ms = performance.now() - t0;
      await store.close();
      return ms;
    });
}

async function main() {
  const { ca } = await CertificateAuthority.init({
    dataDir: join(dir, 'ca'),
    passphrase: 'benchmark passphrase',
    keyAlgorithm: 'P-256',
    publicUrl: 'http://127.0.0.1:7080',
    caName: 'bench',
    crlValidityHours: 24,
    serverDns: ['localhost'],
    serverIp: ['127.0.0.1'],
    operator: { org: 'OPS', name: 'Ops' },
    actor: 'bench',
  });
  const gw = await credential(ca, 'gateway', 'HUB', { dns: ['localhost'], ip: ['127.0.0.1'] });
  const maker = await credential(ca, 'manufacturer', 'ACME');
  const trust = new CaTrust(ca.chainPem());
  await trust.applyCrl(ca.currentCrl());
  const store = new HubStore(join(dir, 'hub'), FMD_MARKETS);
  const oauth = new OAuthService({
    issuer: 'https://127.0.0.1/oauth',
    audienceTemplate: 'urn:packtrust:verifier:{market}',
    tokenTtlSeconds: 600,
    perClient: { ratePerSecond: 10, burst: 20 },
    perAddress: { ratePerSecond: 100, burst: 200 },
    cookieKeys: [randomBytes(32).toString('base64url')],
    keys: await openSigningKeys(store, 'benchmark passphrase', 600, FMD_MARKETS),
    markets: new Set(FMD_MARKETS),
    store: store.store,
    logger,
  });
  await new PrefixRegistry(store, 'bench').add('ACME', PREFIX);
  let publicUrl = 'https://127.0.0.1';
  const app = createGatewayServer({
    store,
    identifier: new ClientIdentifier(trust),
    receiptSigner: { key: createPrivateKey(gw.keyPem), keyid: gw.fingerprint },
    notary: new EvidenceNotary('127.0.0.1/packtrust-evidence', generateKeyPairSync('ed25519').privateKey),
    tls: { key: gw.keyPem, cert: gw.certPem, ca: ca.chainPem() },
    signatureWindowSeconds: 300,
    publicUrl: () => publicUrl,
    maxBodyBytes: 64 * 1024 * 1024,
    randomisationPolicy: 'reject',
    acceptExpiredBatches: false,
    oauth,
    offlineWindowSeconds: 86_400,
    logger,
  });
  const url = await listen(app, '127.0.0.1', 0);
  publicUrl = url;
  const client = new UploadClient({ baseUrl: url, certPem: maker.certPem, keyPem: maker.keyPem, caPem: ca.chainPem() });
  const product = {
    productCode: PRODUCT,
    name: 'Bench',
    commonName: 'bench',
    form: 'tablet',
    strength: '1 mg',
    packSize: 10,
    markets: ['DE', 'FR'],
  };
  if ((await client.write('POST', '/v1/products', JSON.stringify(product))).status !== 201)
    throw new Error('product upload failed');

  const list = serials(PACKS);
  const body = Buffer.from(`${list.join('\n')}\n`);
  const rssBefore = process.memoryUsage().rss;
  peakRss = rssBefore;
  const t0 = performance.now();
  const res = await client.write('POST', `/v1/products/${PRODUCT}/batches/BENCH-1/packs?expiry=281200`, body, {
    contentType: 'text/plain',
  });
  const ms = performance.now() - t0;
  if (res.status !== 201 || !res.receipt?.verified)
    throw new Error(`upload failed: ${res.status} ${res.body.toString().slice(0, 300)}`);
  const feedPacks = [...store.feed('FR').entries()].reduce(
    (n, e) => n + (e.body.type === 'packs' ? e.body.count : 0),
    0,
  );
  if (feedPacks !== PACKS || store.pack(PRODUCT, list[PACKS - 1]!)?.s !== 'ACTIVE')
    throw new Error('packs not stored or not published');
  const uploadPeak = peakRss;
  client.close();
  await app.close();
  await store.close();
  await ca.close();

  const rawMs = await rawLmdbBaseline(list);
  clearInterval(sampler);
  const results = {
    packs: PACKS,
    bodyBytes: body.length,
    signedUpload: { ms, packsPerSecond: PACKS / (ms / 1000), target: 200_000 },
    baseline: { rawLmdbBatchWriteMs: rawMs, packsPerSecond: PACKS / (rawMs / 1000) },
    ratioToBaseline: rawMs / ms,
    rss: { beforeUploadMB: rssBefore / 2 ** 20, peakDuringUploadMB: uploadPeak / 2 ** 20 },
    node: process.version,
  };
  console.log(
    `\npacktrust ingest benchmark: ${PACKS.toLocaleString('en')} packs, ${(body.length / 2 ** 20).toFixed(1)} MiB body`,
  );
  console.log('what                                            ms     packs/s   target');
  console.log(
    `signed mTLS upload, durable + evidence + feed  ${ms.toFixed(0).padStart(6)}  ${(PACKS / (ms / 1000)).toFixed(0).padStart(9)}   >= 200000`,
  );
  console.log(
    `baseline: raw LMDB batch write of the packs    ${rawMs.toFixed(0).padStart(6)}  ${(PACKS / (rawMs / 1000)).toFixed(0).padStart(9)}`,
  );
  console.log(`upload throughput / raw write throughput: ${(rawMs / ms).toFixed(2)}`);
  console.log(
    `RSS before upload ${results.rss.beforeUploadMB.toFixed(0)} MiB, peak during upload ${results.rss.peakDuringUploadMB.toFixed(0)} MiB`,
  );
  writeBenchResults('ingest', results);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
