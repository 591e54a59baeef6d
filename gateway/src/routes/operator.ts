import type { FastifyInstance } from 'fastify';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from '../../../common/src/metrics.ts';
import type { ClientIdentifier } from '../client-identity.ts';
import type { HubStore } from '../hub-store.ts';
import { identifyCallers } from './caller.ts';

interface OperatorRoutesOptions {
  store: Pick<HubStore, 'evidence'>;
  identifier: ClientIdentifier;
}

/**
 * What the hub's operators read (operator certificates only, over mutual TLS): `/metrics`, the
 * gateway's figures in the Prometheus text format. The public `/health` says only whether the
 * gateway serves (server.ts); the figures behind it (evidence count, CRL held) are here.
 */
export async function operatorRoutes(app: FastifyInstance, o: OperatorRoutesOptions): Promise<void> {
  identifyCallers(app, o.identifier, ['operator']);
  app.get('/metrics', async (_request, reply) => {
    const crl = o.identifier.trust.crlStatus();
    const text = prometheusText([
      {
        name: 'packtrust_evidence_seq',
        help: 'Number of the last evidence record.',
        value: o.store.evidence.lastSeq(),
      },
      { name: 'packtrust_crl_number', help: 'Number of the CRL held; -1 before the first.', value: crl.number },
      { name: 'packtrust_crl_revoked', help: 'Revoked certificates on the CRL held.', value: crl.revoked },
      {
        name: 'packtrust_crl_next_update_seconds',
        help: 'nextUpdate of the CRL held, Unix time; 0 before the first.',
        value: crl.nextUpdate ? Date.parse(crl.nextUpdate) / 1000 : 0,
      },
      {
        name: 'packtrust_serving',
        help: 'Whether the gateway serves (1), or refuses every request for want of a current CRL (0).',
        value: o.identifier.trust.crlCurrent() ? 1 : 0,
      },
    ]);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(text);
  });
}
