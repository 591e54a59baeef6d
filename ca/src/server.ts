import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { PacktrustError } from '../../common/src/errors.ts';
import { createHttpServer, type HttpServer, listen, peerCertificateChain } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { OpenApiContract } from '../../common/src/openapi.ts';
import { bytes, toPem, x509 } from '../../common/src/pki.ts';
import { RefusalAudit } from '../../common/src/refusal-audit.ts';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import type { components, operations } from '../../openapi/generated/ca.ts';
import type { AuditRecord } from './audit-log.ts';
import type { CertificateAuthority } from './authority.ts';
import { parseReason } from './crl.ts';
import { ClientCertificateRequired, OperatorRequired } from './errors.ts';
import { type CertRecord, statusOf } from './inventory.ts';
import type { IssuedCertificate } from './issuance.ts';

type CertificateView = components['schemas']['Certificate'];
type IssueBody = components['schemas']['IssueRequest'];
type ListQuery = NonNullable<operations['listCertificates']['parameters']['query']>;
type AuditQuery = NonNullable<operations['listAudit']['parameters']['query']>;
type SerialParams = operations['getCertificate']['parameters']['path'];

const contract = new OpenApiContract(new URL('../../openapi/ca.yaml', import.meta.url).pathname);

export interface CaServerOptions {
  host: string;
  publicPort: number;
  adminPort: number;
  /** Decrypts the admin listener's TLS key. */
  passphrase: string;
  crlRefreshMarginMinutes: number;
  logger: Logger;
}

export interface RunningCaServer {
  publicUrl: string;
  adminUrl: string;
  close(): Promise<void>;
}

/** Starts the public listener (certificates, CRLs, OCSP) and the operator-only admin listener. */
export async function startCaServer(ca: CertificateAuthority, options: CaServerOptions): Promise<RunningCaServer> {
  const publicApp = createPublicApp(ca, options.logger);
  const adminApp = createAdminApp(ca, options);
  let publicUrl: string;
  let adminUrl: string;
  try {
    publicUrl = await listen(publicApp, options.host, options.publicPort);
    adminUrl = await listen(adminApp, options.host, options.adminPort);
  } catch (err) {
    await Promise.all([publicApp.close(), adminApp.close()]);
    throw err;
  }
  const refresh = startCrlRefresh(ca, options);
  return {
    publicUrl,
    adminUrl,
    async close() {
      clearInterval(refresh);
      await Promise.all([publicApp.close(), adminApp.close()]);
    },
  };
}

/** Reissues the CRL before its nextUpdate, also when no revocation happened. */
function startCrlRefresh(ca: CertificateAuthority, options: CaServerOptions): NodeJS.Timeout {
  const marginMs = options.crlRefreshMarginMinutes * 60_000;
  const tick = () => {
    ca.refreshCrls({ marginMs, actor: 'ca-service' }).then(
      (produced) => produced && options.logger.info({ crlNumber: ca.meta().crlNumber }, 'CRL reissued'),
      (err: unknown) => options.logger.error({ err }, 'CRL refresh failed'),
    );
  };
  tick();
  const timer = setInterval(tick, Math.min(60_000, marginMs / 4));
  timer.unref();
  return timer;
}

export function createPublicApp(ca: CertificateAuthority, logger: Logger): HttpServer {
  const app = createHttpServer({ logger, binaryContentTypes: ['application/ocsp-request'] });
  app.get('/health', { schema: contract.routeSchema('getHealth') }, async () => {
    const meta = ca.meta();
    return { status: 'ok', crlNumber: meta.crlNumber, crlNextUpdate: new Date(meta.crlNextUpdate).toISOString() };
  });
  app.get('/ca/root.der', async (_req, reply) => reply.type('application/pkix-cert').send(ca.rootCertificate()));
  app.get('/ca/issuing.der', async (_req, reply) => reply.type('application/pkix-cert').send(ca.issuingCertificate()));
  app.get('/ca/chain.pem', async (_req, reply) => reply.type('application/x-pem-file').send(ca.chainPem()));
  app.get('/crl', async (_req, reply) =>
    reply.type('application/pkix-crl').header('cache-control', 'no-cache').send(ca.currentCrl()),
  );
  app.get('/crl/root', async (_req, reply) => reply.type('application/pkix-crl').send(ca.rootCrl()));
  app.post('/ocsp', async (request, reply) => {
    const body = request.body;
    const der = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
    return reply.type('application/ocsp-response').send(ca.ocsp.respond(der));
  });
  app.get('/ocsp/*', async (request, reply) => {
    const encoded = (request.params as { '*': string })['*'];
    const der = Buffer.from(decodeURIComponent(encoded), 'base64');
    return reply.type('application/ocsp-response').send(ca.ocsp.respond(der));
  });
  return app;
}

export function createAdminApp(ca: CertificateAuthority, options: CaServerOptions): HttpServer {
  const tls = ca.serverCredentials(options.passphrase);
  const app = createHttpServer({
    logger: options.logger,
    tls: {
      key: tls.key.export({ type: 'pkcs8', format: 'pem' }),
      cert: tls.certPem,
      ca: ca.chainPem(),
      requestCert: true,
    },
  });
  const refusals = new RefusalAudit<Omit<AuditRecord, 'time'>>({
    ...ADMIN_REFUSAL_AUDIT,
    write: (records) =>
      ca.recordRefusals(records).catch((err: unknown) => options.logger.error({ err }, 'audit of a refusal failed')),
    summary: (w) => {
      const total = w.keys.reduce((n, k) => n + k.count, 0) + w.otherRefusals;
      const unrecorded = w.keys.reduce((n, k) => n + k.unrecorded, 0) + w.otherRefusals;
      const counts = w.keys.map((k) => `${k.first.actor}: ${k.count} (${k.first.code})`);
      if (w.otherRefusals > 0) counts.push(`other clients: ${w.otherRefusals}`);
      return {
        actor: 'ca-service',
        action: 'admin-access',
        outcome: 'refused',
        detail: `${total} admin calls refused from ${w.from} to ${w.to}, ${unrecorded} of them not written one by one; per client: ${counts.join('; ')}`,
      };
    },
  });
  app.addHook('onClose', () => refusals.close());
  app.decorateRequest('operator', '');
  app.addHook('onRequest', async (request) => {
    (request as OperatorRequest).operator = await authenticateOperator(ca, request, refusals);
  });

  app.post<{ Body: IssueBody }>(
    '/admin/certificates',
    { schema: contract.routeSchema('issueCertificate') },
    async (request, reply) => {
      const b = request.body;
      const issued = await ca.issue(
        {
          csr: Buffer.from(b.csr),
          profile: b.profile,
          org: b.org,
          name: b.name,
          market: b.market,
          dns: b.dns,
          ip: b.ip,
        },
        actorOf(request),
      );
      return reply.code(201).send(issuedView(issued));
    },
  );
  app.get<{ Querystring: ListQuery }>(
    '/admin/certificates',
    { schema: contract.routeSchema('listCertificates') },
    async (request) => ({ certificates: ca.list(request.query).map(certificateView) }),
  );
  app.get<{ Params: SerialParams }>(
    '/admin/certificates/:serial',
    { schema: contract.routeSchema('getCertificate') },
    async (request) => certificateView(ca.show(request.params.serial)),
  );
  app.post<{ Params: SerialParams; Body: { reason: string } }>(
    '/admin/certificates/:serial/revoke',
    { schema: contract.routeSchema('revokeCertificate') },
    async (request) =>
      certificateView(await ca.revoke(request.params.serial, parseReason(request.body.reason), actorOf(request))),
  );
  app.post<{ Params: SerialParams; Body: { csr?: string } }>(
    '/admin/certificates/:serial/renew',
    { schema: contract.routeSchema('renewCertificate') },
    async (request, reply) => {
      const csr = request.body.csr === undefined ? undefined : Buffer.from(request.body.csr);
      return reply.code(201).send(issuedView(await ca.renew(request.params.serial, csr, actorOf(request))));
    },
  );
  app.get<{ Querystring: AuditQuery }>(
    '/admin/audit',
    { schema: contract.routeSchema('listAudit') },
    async (request) => {
      const from = request.query.from ?? 1;
      const limit = request.query.limit ?? 100;
      const entries = [];
      for (const e of ca.audit.entries(from)) {
        entries.push({ seq: e.seq, prev: e.prev, hash: e.hash, ...e.body });
        if (entries.length >= limit) break;
      }
      return { entries };
    },
  );
  app.get('/admin/audit/verify', { schema: contract.routeSchema('verifyAudit') }, async () => ca.audit.verify());
  return app;
}

type OperatorRequest = FastifyRequest & { operator: string };
const actorOf = (request: FastifyRequest): string => (request as OperatorRequest).operator;

/**
 * Refused admin calls are audited, and anyone who reaches the admin listener can cause them (its
 * handshake accepts any certificate, or none): per minute the first 5 of each client and at most
 * 100 in all are written one by one, the others counted in one entry (common/src/refusal-audit.ts).
 */
const ADMIN_REFUSAL_AUDIT = { intervalMs: 60_000, verbatimPerKey: 5, verbatimPerWindow: 100, maxKeys: 100 };

/**
 * The admin API's gate: the client certificate must be one this CA issued (byte for byte the DER
 * in the inventory), unexpired, unrevoked right now (checked per request, not per TLS session),
 * and of the operator profile. Refusals are audited.
 */
async function authenticateOperator(
  ca: CertificateAuthority,
  request: FastifyRequest,
  refusals: RefusalAudit<Omit<AuditRecord, 'time'>>,
): Promise<string> {
  const leaf = peerCertificateChain(request)[0];
  try {
    if (!leaf) throw new ClientCertificateRequired('No client certificate was presented');
    const fingerprint = createHash('sha256').update(leaf).digest('hex');
    const serial = serialOfDer(leaf);
    const record = serial ? ca.inventory.get(serial) : undefined;
    if (!record || record.fingerprint !== fingerprint) {
      throw new ClientCertificateRequired('The client certificate was not issued by this CA');
    }
    const status = statusOf(record);
    if (status !== 'valid') throw new ClientCertificateRequired(`The client certificate is ${status}`);
    if (record.profile !== 'operator') {
      throw new OperatorRequired(`A ${record.profile} certificate may not use the admin API`);
    }
    return `operator:${record.org}/${record.name} (${record.serial})`;
  } catch (err) {
    if (err instanceof PacktrustError) {
      const who = leaf ? `client ${createHash('sha256').update(leaf).digest('hex').slice(0, 16)}` : 'anonymous client';
      await refusals.record(who, {
        actor: who,
        action: 'admin-access',
        outcome: 'refused',
        code: err.code,
        detail: err.message,
      });
    }
    throw err;
  }
}

function serialOfDer(der: Buffer): string | undefined {
  try {
    return normaliseSerial(new x509.X509Certificate(bytes(der)).serialNumber);
  } catch {
    return undefined;
  }
}

export function certificateView(r: CertRecord): CertificateView {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    serial: r.serial,
    profile: r.profile,
    org: r.org,
    name: r.name,
    ...(r.market ? { market: r.market } : {}),
    dns: r.dns,
    ip: r.ip,
    keyType: r.keyType,
    status: statusOf(r),
    notBefore: iso(r.notBefore),
    notAfter: iso(r.notAfter),
    issuedAt: iso(r.issuedAt),
    issuedBy: r.issuedBy,
    ...(r.renewedFrom ? { renewedFrom: r.renewedFrom } : {}),
    ...(r.revokedAt !== undefined ? { revokedAt: iso(r.revokedAt), revocationReason: r.revocationReason! } : {}),
    fingerprint: r.fingerprint,
    certificatePem: toPem(r.der, 'CERTIFICATE'),
  };
}

function issuedView(issued: IssuedCertificate): components['schemas']['IssuedCertificate'] {
  return { certificate: certificateView(issued.record), chainPem: issued.chainPem };
}
