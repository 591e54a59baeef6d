import type { HttpServer } from '../../../common/src/http.ts';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from '../../../common/src/metrics.ts';
import type { OpenApiContract } from '../../../common/src/openapi.ts';
import { toPem } from '../../../common/src/pki.ts';
import type { components, operations } from '../../../openapi/generated/ca.ts';
import { operatorOf } from '../admin-access.ts';
import type { CertificateAuthority } from '../authority.ts';
import { parseReason } from '../crl.ts';
import { type CertRecord, statusOf } from '../inventory.ts';
import type { IssuedCertificate } from '../issuance.ts';

type CertificateView = components['schemas']['Certificate'];
type IssueBody = components['schemas']['IssueRequest'];
type ListQuery = NonNullable<operations['listCertificates']['parameters']['query']>;
type AuditQuery = NonNullable<operations['listAudit']['parameters']['query']>;
type SerialParams = operations['getCertificate']['parameters']['path'];

/**
 * The operators' admin API (openapi/ca.yaml, tag `admin`): issue, list, show, revoke and renew
 * certificates, read and verify the audit log, and the CA's metrics. Who calls is settled before these run, by the
 * listener's operator gate (admin-access.ts); every change is audited by the authority.
 */
export async function adminRoutes(
  app: HttpServer,
  { ca, contract }: { ca: CertificateAuthority; contract: OpenApiContract },
): Promise<void> {
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
        operatorOf(request),
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
      certificateView(await ca.revoke(request.params.serial, parseReason(request.body.reason), operatorOf(request))),
  );
  app.post<{ Params: SerialParams; Body: { csr?: string } }>(
    '/admin/certificates/:serial/renew',
    { schema: contract.routeSchema('renewCertificate') },
    async (request, reply) => {
      const csr = request.body.csr === undefined ? undefined : Buffer.from(request.body.csr);
      return reply.code(201).send(issuedView(await ca.renew(request.params.serial, csr, operatorOf(request))));
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
  app.get('/metrics', async (_request, reply) => {
    const meta = ca.meta();
    const text = prometheusText([
      {
        name: 'packtrust_ca_crl_number',
        help: 'Number of the current CRL of the issuing CA.',
        value: meta.crlNumber,
      },
      {
        name: 'packtrust_ca_crl_next_update_seconds',
        help: 'nextUpdate of the current CRL, Unix time.',
        value: meta.crlNextUpdate / 1000,
      },
      { name: 'packtrust_ca_certificates', help: 'Certificates issued.', value: ca.inventory.count() },
      {
        name: 'packtrust_ca_certificates_revoked',
        help: 'Certificates revoked.',
        value: ca.inventory.revokedCount(),
      },
      { name: 'packtrust_ca_audit_entries', help: 'Entries of the audit log.', value: ca.audit.lastSeq() },
    ]);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(text);
  });
}

function certificateView(r: CertRecord): CertificateView {
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
