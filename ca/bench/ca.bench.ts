/**
 * `npm run bench:ca`: certificate issuance, OCSP responses and a 100,000-entry CRL, each beside an
 * openssl baseline measured in the same run. Prints a table and writes bench/results/ca.json.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateKeyAndCsr } from '../../clients/keygen.ts';
import { writeBenchResults } from '../../common/src/bench.ts';
import { createLogger } from '../../common/src/log.ts';
import { toPem } from '../../common/src/pki.ts';
import { CertificateAuthority } from '../src/authority.ts';
import type { CertRecord } from '../src/inventory.ts';
import { startCaServer } from '../src/server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ISSUE_COUNT = Number(process.env.BENCH_ISSUE_COUNT ?? 3000);
const ISSUE_CONCURRENCY = 32;
const OCSP_COUNT = Number(process.env.BENCH_OCSP_COUNT ?? 20_000);
const CRL_ENTRIES = Number(process.env.BENCH_CRL_ENTRIES ?? 100_000);
const HTTP_SECONDS = 5;
const PASSPHRASE = 'benchmark passphrase';

const dir = mkdtempSync(join(tmpdir(), 'packtrust-bench-ca-'));
const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** openssl's raw ECDSA P-256 signing rate on this machine, one core. */
function opensslSignRate(): number {
  const out = sh('openssl', ['speed', '-seconds', '3', 'ecdsap256']);
  const line = out.split('\n').find((l) => /256 bits ecdsa \(nistp256\)/.test(l));
  const fields = line?.trim().split(/\s+/) ?? [];
  return Number(fields.at(-2));
}

async function csrs(n: number): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: n }, async () => (await generateKeyAndCsr()).csr));
}

async function benchIssuance(ca: CertificateAuthority) {
  const requests = await csrs(20);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: ISSUE_CONCURRENCY }, async () => {
      while (next < ISSUE_COUNT) {
        const i = next++;
        await ca.issue(
          { csr: requests[i % requests.length]!, profile: 'manufacturer', org: `ORG-${i % 100}` },
          'bench',
        );
      }
    }),
  );
  return ISSUE_COUNT / ((performance.now() - t0) / 1000);
}

function ocspRequest(ca: CertificateAuthority, serialRecord: CertRecord): Buffer {
  writeFileSync(join(dir, 'issuer.pem'), toPem(ca.issuingCertificate(), 'CERTIFICATE'));
  writeFileSync(join(dir, 'leaf.pem'), toPem(serialRecord.der, 'CERTIFICATE'));
  sh('openssl', ['ocsp', '-issuer', 'issuer.pem', '-cert', 'leaf.pem', '-reqout', 'ocsp-req.der']);
  return Buffer.from(execFileSync('cat', [join(dir, 'ocsp-req.der')]));
}

function benchOcspInProcess(ca: CertificateAuthority, request: Buffer) {
  for (let i = 0; i < 500; i++) ca.ocsp.respond(request);
  const t0 = performance.now();
  for (let i = 0; i < OCSP_COUNT; i++) ca.ocsp.respond(request);
  return OCSP_COUNT / ((performance.now() - t0) / 1000);
}

async function benchOcspHttp(
  url: string,
): Promise<{ perSecond: number; p50ms: number; p99ms: number; errors: number }> {
  // Asynchronous: the server under test runs on this process's event loop.
  const { stdout } = await promisify(execFile)(join(ROOT, 'node_modules/.bin/tsx'), [
    join(ROOT, 'ca/bench/http-load.ts'),
    `${url}/ocsp`,
    'application/ocsp-request',
    join(dir, 'ocsp-req.der'),
    '32',
    String(HTTP_SECONDS),
  ]);
  return JSON.parse(stdout);
}

async function benchCrl(ca: CertificateAuthority) {
  const now = Date.now();
  const sample = ca.list({ status: 'valid' }).find((r) => r.profile === 'manufacturer')!;
  await ca.store.transaction(() => {
    for (let i = 0; i < CRL_ENTRIES; i++) {
      const serial = (0x4000000000n + BigInt(i)).toString(16).padStart(32, 'a');
      ca.inventory.markRevoked({ ...sample, serial }, 'keyCompromise', now, 'bench');
    }
  });
  const t0 = performance.now();
  await ca.refreshCrls({ marginMs: 0, force: true, actor: 'bench' });
  const ms = performance.now() - t0;
  return { ms, bytes: ca.currentCrl().length };
}

/** `openssl ca -gencrl` over an index of the same number of revoked entries. */
function opensslCrlBaseline(): number {
  const o = join(dir, 'openssl-ca');
  mkdirSync(o);
  sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${o}/ca.key`,
    '-out',
    `${o}/ca.pem`,
    '-subj',
    '/CN=baseline',
    '-days',
    '30',
  ]);
  const lines: string[] = [];
  for (let i = 0; i < CRL_ENTRIES; i++) {
    const serial = (0x4000000000n + BigInt(i)).toString(16).padStart(32, 'A').toUpperCase();
    lines.push(`R\t301231000000Z\t261101000000Z,keyCompromise\t${serial}\tunknown\t/CN=r${i}`);
  }
  writeFileSync(`${o}/index.txt`, `${lines.join('\n')}\n`);
  writeFileSync(`${o}/crlnumber`, '01\n');
  writeFileSync(
    `${o}/openssl.cnf`,
    `[ca]\ndefault_ca=b\n[b]\ndatabase=${o}/index.txt\ncrlnumber=${o}/crlnumber\ncertificate=${o}/ca.pem\nprivate_key=${o}/ca.key\ndefault_md=sha256\ndefault_crl_hours=24\n`,
  );
  const t0 = performance.now();
  const r = spawnSync('openssl', ['ca', '-config', `${o}/openssl.cnf`, '-gencrl', '-out', `${o}/crl.pem`]);
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`openssl ca -gencrl failed: ${r.stderr}`);
  return ms;
}

async function main() {
  const { ca } = await CertificateAuthority.init({
    dataDir: join(dir, 'ca'),
    passphrase: PASSPHRASE,
    keyAlgorithm: 'P-256',
    publicUrl: 'http://127.0.0.1:7080',
    caName: 'bench',
    crlValidityHours: 24,
    serverDns: ['localhost'],
    serverIp: ['127.0.0.1'],
    operator: { org: 'BENCH', name: 'Bench' },
    actor: 'bench',
  });
  const opensslSigns = opensslSignRate();
  const issuance = await benchIssuance(ca);
  const request = ocspRequest(ca, ca.list({ org: 'ORG-1' })[0]!);
  const ocspInProcess = benchOcspInProcess(ca, request);
  const server = await startCaServer(ca, {
    host: '127.0.0.1',
    publicPort: 0,
    adminPort: 0,
    passphrase: PASSPHRASE,
    crlRefreshMarginMinutes: 60,
    logger: createLogger('bench', 'silent'),
  });
  const ocspHttp = await benchOcspHttp(server.publicUrl);
  await server.close();
  const crl = await benchCrl(ca);
  const opensslCrlMs = opensslCrlBaseline();
  await ca.close();

  const results = {
    machine: { node: process.version, cpus: (await import('node:os')).cpus().length },
    issuance: { perSecond: issuance, count: ISSUE_COUNT, concurrency: ISSUE_CONCURRENCY, target: 1000 },
    ocsp: { inProcessPerSecond: ocspInProcess, http: ocspHttp, target: 5000 },
    crl: { entries: CRL_ENTRIES, ms: crl.ms, bytes: crl.bytes, targetMs: 2000 },
    baseline: { opensslEcdsaP256SignsPerSecond: opensslSigns, opensslGencrlMs: opensslCrlMs },
  };
  const f = (n: number) => n.toFixed(0).padStart(9);
  console.log('\npacktrust CA benchmark (P-256)');
  console.log('what                                      packtrust   baseline (openssl)   ratio   target');
  console.log(
    `certificates issued /s (durable, audited) ${f(issuance)}   ${f(opensslSigns)} signs/s     ${(issuance / opensslSigns).toFixed(2).padStart(5)}   >= 1000`,
  );
  console.log(
    `OCSP responses /s, in process            ${f(ocspInProcess)}   ${f(opensslSigns)} signs/s     ${(ocspInProcess / opensslSigns).toFixed(2).padStart(5)}   >= 5000`,
  );
  console.log(
    `OCSP responses /s, HTTP (32 conns)       ${f(ocspHttp.perSecond)}   p50 ${ocspHttp.p50ms.toFixed(2)} ms p99 ${ocspHttp.p99ms.toFixed(2)} ms, errors ${ocspHttp.errors}`,
  );
  console.log(
    `CRL of ${CRL_ENTRIES} entries, ms (durable)    ${f(crl.ms)}   ${f(opensslCrlMs)} ms gencrl     ${(crl.ms / opensslCrlMs).toFixed(2).padStart(5)}   <= 2000`,
  );
  writeBenchResults('ca', results);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
