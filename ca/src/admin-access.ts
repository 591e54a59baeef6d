import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { PacktrustError } from '../../common/src/errors.ts';
import { type HttpServer, peerCertificateChain } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { bytes, x509 } from '../../common/src/pki.ts';
import { RefusalAudit } from '../../common/src/refusal-audit.ts';
import { normaliseSerial } from '../../common/src/vocabulary.ts';
import type { AuditRecord } from './audit-log.ts';
import type { CertificateAuthority } from './authority.ts';
import { ClientCertificateRequired, OperatorRequired } from './errors.ts';
import { statusOf } from './inventory.ts';

/**
 * Refused admin calls are audited, and anyone who reaches the admin listener can cause them (its
 * handshake accepts any certificate, or none): per minute the first 5 of each client and at most
 * 100 in all are written one by one, the others counted in one entry (common/src/refusal-audit.ts).
 */
const ADMIN_REFUSAL_AUDIT = { intervalMs: 60_000, verbatimPerKey: 5, verbatimPerWindow: 100, maxKeys: 100 };

type Refusals = RefusalAudit<Omit<AuditRecord, 'time'>>;
type OperatorRequest = FastifyRequest & { operator: string };

/**
 * The admin listener's gate, as an `onRequest` hook on the whole listener (unknown paths
 * included): every request must come from an operator (see {@link authenticateOperator}); the
 * handlers read who it is with {@link operatorOf}. Refusals are audited.
 */
export function addOperatorGate(app: HttpServer, ca: CertificateAuthority, logger: Logger): void {
  const refusals: Refusals = new RefusalAudit({
    ...ADMIN_REFUSAL_AUDIT,
    write: (records) =>
      ca.recordRefusals(records).catch((err: unknown) => logger.error({ err }, 'audit of a refusal failed')),
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
}

/** The operator a request passed the gate as: `operator:<org>/<name> (<serial>)`, the audit log's actor. */
export const operatorOf = (request: FastifyRequest): string => (request as OperatorRequest).operator;

/**
 * The client certificate must be one this CA issued (byte for byte the DER in the inventory),
 * unexpired, unrevoked right now (checked per request, not per TLS session), and of the operator
 * profile.
 */
async function authenticateOperator(ca: CertificateAuthority, request: FastifyRequest, refusals: Refusals) {
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
