import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEM_CONTENT_TYPE } from '../../common/src/errors.ts';
import { createLogger } from '../../common/src/log.ts';
import { toPem } from '../../common/src/pki.ts';
import { postHead, rawRequest, TIMED_OUT } from '../../common/test/fixtures/raw-http.ts';
import { type RunningCaServer, startCaServer } from '../src/server.ts';
import { createTestCa, httpsRequest, openssl, opensslCsr, P256, PASSPHRASE, run, type TestCa } from './fixtures.ts';

let t: TestCa;
let server: RunningCaServer;
let chain: string;
let op: { key: string; cert: string };

beforeAll(async () => {
  t = await createTestCa();
  server = await startCaServer(t.ca, {
    host: '127.0.0.1',
    publicPort: 0,
    adminPort: 0,
    passphrase: PASSPHRASE,
    crlRefreshMarginMinutes: 60,
    logger: createLogger('ca-test', 'silent'),
  });
  chain = t.ca.chainPem();
  op = { key: t.operatorKeyPem, cert: t.operatorCertPem };
});
afterAll(async () => {
  await server.close();
  await t.cleanup();
});

const admin = (
  path: string,
  options: { method?: string; body?: unknown; key?: string; cert?: string; agent?: Agent } = {},
) => httpsRequest(`${server.adminUrl}${path}`, { key: op.key, cert: op.cert, ca: chain, ...options });

async function issueViaApi(profile: string, org: string, extra: Record<string, unknown> = {}) {
  const { csr, keyPath } = opensslCsr(t.dir, `${profile}-${org}`, P256);
  const res = await admin('/admin/certificates', {
    method: 'POST',
    body: { csr: csr.toString(), profile, org, ...extra },
  });
  expect(res.status).toBe(201);
  const body = res.json<{ certificate: { serial: string; certificatePem: string } }>();
  const { readFileSync } = await import('node:fs');
  return {
    serial: body.certificate.serial,
    cert: body.certificate.certificatePem,
    key: readFileSync(keyPath, 'utf8'),
    keyPath,
  };
}

function ocsp(serialCertPem: string, extra: string[] = []) {
  const issuer = t.file('issuing.pem', toPem(t.ca.issuingCertificate(), 'CERTIFICATE'));
  const cert = t.file(`ocsp-${Math.random()}.pem`, serialCertPem);
  const bundle = t.file('chain.pem', chain);
  return run('openssl', [
    'ocsp',
    '-issuer',
    issuer,
    '-cert',
    cert,
    '-url',
    `${server.publicUrl}/ocsp`,
    '-CAfile',
    bundle,
    ...extra,
  ]);
}

describe('public listener', () => {
  it('serves the CA certificates and the current CRL as DER with the right media types', async () => {
    const crl = await fetch(`${server.publicUrl}/crl`);
    expect(crl.status).toBe(200);
    expect(crl.headers.get('content-type')).toBe('application/pkix-crl');
    const der = Buffer.from(await crl.arrayBuffer());
    expect(der.equals(t.ca.currentCrl())).toBe(true);
    expect(openssl(['crl', '-inform', 'DER', '-noout', '-text'], der).stdout).toContain('CRL Number');
    const root = await fetch(`${server.publicUrl}/ca/root.der`);
    expect(root.headers.get('content-type')).toBe('application/pkix-cert');
    expect(Buffer.from(await root.arrayBuffer()).equals(t.ca.rootCertificate())).toBe(true);
    const rootCrl = await fetch(`${server.publicUrl}/crl/root`);
    expect(
      openssl(['crl', '-inform', 'DER', '-noout', '-issuer'], Buffer.from(await rootCrl.arrayBuffer())).stdout,
    ).toContain('Root CA');
  });

  it('answers openssl ocsp with good, then revoked after a revocation, with the nonce echoed', async () => {
    const m = await issueViaApi('manufacturer', 'OCSP-1');
    const before = await ocsp(m.cert);
    expect(before.stderr).toContain('Response verify OK');
    expect(before.stdout).toContain(': good');
    expect(before.stderr + before.stdout).not.toContain('WARNING: no nonce');
    await t.ca.revoke(m.serial, 'keyCompromise', 'test');
    const after = await ocsp(m.cert);
    expect(after.stdout).toContain(': revoked');
    expect(after.stdout).toContain('Reason: keyCompromise');
  });

  it('answers unknown for a serial this CA never issued', async () => {
    const issuer = t.file('issuing.pem', toPem(t.ca.issuingCertificate(), 'CERTIFICATE'));
    const r = await run('openssl', [
      'ocsp',
      '-issuer',
      issuer,
      '-serial',
      '0x7abcdef0123456789',
      '-url',
      `${server.publicUrl}/ocsp`,
      '-CAfile',
      t.file('chain.pem', chain),
    ]);
    expect(r.stdout).toContain(': unknown');
  });

  it('answers the GET form of RFC 6960 Appendix A', async () => {
    const m = await issueViaApi('manufacturer', 'OCSP-2');
    const issuer = t.file('issuing.pem', toPem(t.ca.issuingCertificate(), 'CERTIFICATE'));
    const reqFile = `${t.dir}/req.der`;
    openssl(['ocsp', '-issuer', issuer, '-cert', t.file('get.pem', m.cert), '-no_nonce', '-reqout', reqFile]);
    const { readFileSync } = await import('node:fs');
    const encoded = encodeURIComponent(readFileSync(reqFile).toString('base64'));
    const res = await fetch(`${server.publicUrl}/ocsp/${encoded}`);
    expect(res.headers.get('content-type')).toBe('application/ocsp-response');
    const respFile = t.file('resp.der', Buffer.from(await res.arrayBuffer()));
    const text = openssl(['ocsp', '-respin', respFile, '-resp_text', '-noverify']).stdout;
    expect(text).toContain('Cert Status: good');
    expect(text).toContain('Responder Id:'); // by key
  });

  it('answers a malformed OCSP request with the malformedRequest status', async () => {
    const res = await fetch(`${server.publicUrl}/ocsp`, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: 'not DER',
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).toString('hex')).toBe('30030a0101');
  });
});

describe('monitoring', () => {
  it('says on the public /health only whether the CA serves', async () => {
    const res = await fetch(`${server.publicUrl}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.text()).toBe('{"status":"ok"}');
    expect((await fetch(`${server.publicUrl}/metrics`)).status).toBe(404);
  });

  it('shows /metrics on the admin listener, to operators only', async () => {
    const res = await admin('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4');
    const meta = t.ca.meta();
    const text = res.body.toString();
    expect(text).toContain(
      `# HELP packtrust_ca_crl_number Number of the current CRL of the issuing CA.\n# TYPE packtrust_ca_crl_number gauge\npacktrust_ca_crl_number ${meta.crlNumber}\n`,
    );
    expect(text).toContain(`\npacktrust_ca_crl_next_update_seconds ${meta.crlNextUpdate / 1000}\n`);
    expect(text).toContain(`\npacktrust_ca_certificates ${t.ca.inventory.count()}\n`);
    expect(text).toMatch(/\npacktrust_ca_certificates_revoked \d+\n/);
    expect(text).toMatch(/\npacktrust_ca_audit_entries \d+\n/);
    const anonymous = await httpsRequest(`${server.adminUrl}/metrics`, { ca: chain });
    expect(anonymous.status).toBe(401);
    expect(anonymous.json()).toMatchObject({ code: 'CA_CLIENT_CERT_REQUIRED' });
  });
});

describe('admin listener (mutual TLS, operators only)', () => {
  it('lets an operator issue, show, list and revoke', async () => {
    const m = await issueViaApi('manufacturer', 'ADMIN-1', { name: 'Admin One' });
    const shown = await admin(`/admin/certificates/${m.serial}`);
    expect(shown.json()).toMatchObject({ serial: m.serial, org: 'ADMIN-1', name: 'Admin One', status: 'valid' });
    const listed = await admin('/admin/certificates?org=ADMIN-1');
    expect(listed.json<{ certificates: unknown[] }>().certificates).toHaveLength(1);
    const revoked = await admin(`/admin/certificates/${m.serial}/revoke`, {
      method: 'POST',
      body: { reason: 'affiliationChanged' },
    });
    expect(revoked.status).toBe(200);
    expect(revoked.json()).toMatchObject({ status: 'revoked', revocationReason: 'affiliationChanged' });
    const audit = await admin('/admin/audit/verify');
    expect(audit.json()).toMatchObject({ ok: true });
  });

  it('answers bad input with problem+json and a stable code', async () => {
    const bad = await admin('/admin/certificates', {
      method: 'POST',
      body: { csr: 'nope', profile: 'manufacturer', org: 'X' },
    });
    expect(bad.status).toBe(400);
    expect(String(bad.headers['content-type']).startsWith(PROBLEM_CONTENT_TYPE)).toBe(true);
    expect(bad.json()).toMatchObject({ status: 400, code: 'CA_CSR_MALFORMED' });
    const unknown = await admin('/admin/certificates/7fffffffffffffffffffffffffffffff');
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'CA_SERIAL_UNKNOWN' });
    const schema = await admin('/admin/certificates', { method: 'POST', body: { profile: 'manufacturer' } });
    expect(schema.json()).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    const profile = await admin('/admin/certificates', {
      method: 'POST',
      body: { csr: 'x', profile: 'wizard', org: 'X' },
    });
    expect(profile.json()).toMatchObject({ code: 'CA_PROFILE_UNKNOWN' });
    const reason = await admin('/admin/certificates/7fff/revoke', { method: 'POST', body: { reason: 'because' } });
    expect(reason.status).toBe(400);
  });

  it('refuses a key its profile may not hold: P-384 signs no HTTP message, so no manufacturer gets one', async () => {
    const { csr } = opensslCsr(t.dir, 'p384-maker', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
    const refused = await admin('/admin/certificates', {
      method: 'POST',
      body: { csr: csr.toString(), profile: 'manufacturer', org: 'P384-MAKER' },
    });
    expect(refused.status).toBe(400);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(refused.json()).toEqual({
      type: 'https://packtrust.dev/problems/ca-key-rejected',
      title: 'The public key is weak or of an unsupported type',
      status: 400,
      detail:
        'A manufacturer certificate holds a P-256, Ed25519 or RSA key (it signs HTTP messages); this key is P-384',
      code: 'CA_KEY_REJECTED',
    });
    // An operator only authenticates over TLS: P-384 serves.
    const operator = await admin('/admin/certificates', {
      method: 'POST',
      body: { csr: csr.toString(), profile: 'operator', org: 'P384-OPS' },
    });
    expect(operator.status).toBe(201);
  });

  it('refuses a request without a client certificate (401)', async () => {
    const res = await httpsRequest(`${server.adminUrl}/admin/certificates`, { ca: chain });
    expect(res.status).toBe(401);
    expect(res.json()).toMatchObject({ code: 'CA_CLIENT_CERT_REQUIRED' });
  });

  it('refuses a large body without a client certificate before reading it, and closes the connection', async () => {
    // 60 MB announced, 16 KiB sent, the rest held back: the answer comes while the client holds it.
    const answer = await rawRequest({
      url: server.adminUrl,
      tls: { ca: chain },
      head: postHead('/admin/certificates', 60 * 1024 * 1024, 16 * 1024),
    });
    expect(answer).toMatchObject({
      status: 401,
      headers: { 'content-type': 'application/problem+json; charset=utf-8', connection: 'close' },
    });
    expect(JSON.parse(answer.body)).toEqual({
      type: 'https://packtrust.dev/problems/ca-client-cert-required',
      title: 'A valid client certificate issued by this CA is required',
      status: 401,
      detail: 'No client certificate was presented',
      code: 'CA_CLIENT_CERT_REQUIRED',
    });
  });

  it('audits the first refusals of each client one by one and counts the rest in one entry', async () => {
    // A listener of its own: closing it writes the count of its window.
    const second = await startCaServer(t.ca, {
      host: '127.0.0.1',
      publicPort: 0,
      adminPort: 0,
      passphrase: PASSPHRASE,
      crlRefreshMarginMinutes: 60,
      logger: createLogger('ca-test', 'silent'),
    });
    const before = [...t.ca.audit.entries()].length;
    const agent = new Agent({ keepAlive: true, ca: chain });
    try {
      for (let i = 0; i < 300; i++) {
        const res = await httpsRequest(`${second.adminUrl}/admin/certificates`, { ca: chain, agent });
        expect(res.status).toBe(401);
      }
    } finally {
      agent.destroy();
      await second.close();
    }
    const written = [...t.ca.audit.entries()].slice(before).map((e) => e.body);
    expect(written).toHaveLength(6);
    expect(written[0]).toEqual({
      time: expect.any(String),
      actor: 'anonymous client',
      action: 'admin-access',
      outcome: 'refused',
      code: 'CA_CLIENT_CERT_REQUIRED',
      detail: 'No client certificate was presented',
    });
    expect(written[5]).toEqual({
      time: expect.any(String),
      actor: 'ca-service',
      action: 'admin-access',
      outcome: 'refused',
      detail: expect.stringMatching(
        /^300 admin calls refused from \S+ to \S+, 295 of them not written one by one; per client: anonymous client: 300 \(CA_CLIENT_CERT_REQUIRED\)$/,
      ),
    });
  });

  it('refuses a manufacturer certificate (403) and writes nothing', async () => {
    const m = await issueViaApi('manufacturer', 'NOT-AN-OPERATOR');
    const count = t.ca.inventory.count();
    const { csr } = opensslCsr(t.dir, 'sneaky', P256);
    const res = await admin('/admin/certificates', {
      method: 'POST',
      key: m.key,
      cert: m.cert,
      body: { csr: csr.toString(), profile: 'operator', org: 'NOT-AN-OPERATOR' },
    });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'CA_OPERATOR_REQUIRED' });
    expect(t.ca.inventory.count()).toBe(count);
    const last = [...t.ca.audit.entries()].at(-1)!.body;
    expect(last).toMatchObject({ action: 'admin-access', outcome: 'refused', code: 'CA_OPERATOR_REQUIRED' });
  });

  it('refuses a certificate of a foreign CA (401)', async () => {
    const foreign = await createTestCa();
    try {
      const res = await admin('/admin/certificates', { key: foreign.operatorKeyPem, cert: foreign.operatorCertPem });
      expect(res.status).toBe(401);
      expect(res.json()).toMatchObject({ code: 'CA_CLIENT_CERT_REQUIRED' });
    } finally {
      await foreign.cleanup();
    }
  });

  it('refuses a revoked operator on the very next request of the same kept-alive TLS session', async () => {
    const second = await issueViaApi('operator', 'OPS-2');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ok = await admin('/admin/certificates?org=OPS-2', { key: second.key, cert: second.cert, agent });
      expect(ok.status).toBe(200);
      await t.ca.revoke(second.serial, 'affiliationChanged', 'test');
      const refused = await admin('/admin/certificates?org=OPS-2', { key: second.key, cert: second.cert, agent });
      expect(refused.status).toBe(401);
      expect(refused.json<{ detail: string }>().detail).toContain('revoked');
    } finally {
      agent.destroy();
    }
  });

  it('is reachable with curl --cert/--key', async () => {
    const r = await run('curl', [
      '-sS',
      '--cacert',
      t.file('chain.pem', chain),
      '--cert',
      t.file('op.pem', op.cert),
      '--key',
      t.file('op.key', op.key),
      `${server.adminUrl}/admin/audit/verify`,
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });
  });
});

describe('both listeners, with a client that sends slowly', () => {
  let slow: RunningCaServer;
  beforeAll(async () => {
    slow = await startCaServer(t.ca, {
      host: '127.0.0.1',
      publicPort: 0,
      adminPort: 0,
      passphrase: PASSPHRASE,
      crlRefreshMarginMinutes: 60,
      timeouts: { headersTimeoutMs: 1500, requestTimeoutMs: 3000, keepAliveTimeoutMs: 1000, idleTimeoutMs: 10_000 },
      logger: createLogger('ca-test', 'silent'),
    });
  });
  afterAll(() => slow.close());

  it('answers 408 to an OCSP request sent one byte at a time', async () => {
    const answer = await rawRequest({
      url: slow.publicUrl,
      head: postHead('/ocsp', 1000, 0, 'application/ocsp-request'),
      drip: { data: Buffer.alloc(1000, 0x30), everyMs: 20 },
    });
    expect(answer).toMatchObject({
      status: 408,
      headers: { 'content-type': 'application/problem+json; charset=utf-8', connection: 'close' },
    });
    expect(JSON.parse(answer.body)).toEqual(TIMED_OUT);
    expect(answer.dripped).toBeLessThan(500);
  });

  it('answers 408 to an operator whose request to the admin API arrives one byte at a time', async () => {
    const answer = await rawRequest({
      url: slow.adminUrl,
      tls: { ca: chain, cert: op.cert, key: op.key },
      head: postHead('/admin/certificates', 1000, 0),
      drip: { data: Buffer.alloc(1000, 0x20), everyMs: 20 },
    });
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toEqual(TIMED_OUT);
    expect(answer.dripped).toBeLessThan(500);
  });
});
