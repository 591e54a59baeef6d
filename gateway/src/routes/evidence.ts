import type { FastifyInstance } from 'fastify';
import type { operations } from '../../../openapi/generated/hub.ts';
import type { ClientIdentifier } from '../client-identity.ts';
import { EvidenceNoCheckpoint } from '../errors.ts';
import type { EvidenceNotary } from '../evidence-checkpoints.ts';
import type { HubStore } from '../hub-store.ts';
import { hubContract } from '../master-data.ts';
import { identifyCallers } from './caller.ts';

interface EvidenceRoutesOptions {
  store: Pick<HubStore, 'evidence'>;
  identifier: ClientIdentifier;
  notary: EvidenceNotary;
}

/** Every holder of a packtrust certificate may audit the log: it holds hashes, never a record. */
const AUDITORS = ['manufacturer', 'verifier-node', 'operator'] as const;

type Query<Op extends keyof operations> = Required<NonNullable<operations[Op]['parameters']['query']>>;

/**
 * What anyone holding receipts or checkpoints needs to check the evidence log (ARCHITECTURE.md,
 * "Evidence"; RFC 9162 §2.1): the newest signed checkpoint, the key that signs them, inclusion
 * proofs and consistency proofs. The answers are hashes and signed notes: a proof is checked
 * against a checkpoint, never trusted because the hub sent it.
 */
export async function evidenceRoutes(app: FastifyInstance, o: EvidenceRoutesOptions): Promise<void> {
  const log = o.store.evidence;
  identifyCallers(app, o.identifier, AUDITORS);

  app.get('/v1/evidence/checkpoint', async (_request, reply) => {
    const latest = log.latestCheckpoint();
    if (!latest) throw new EvidenceNoCheckpoint('The evidence log has no checkpoint yet');
    return reply.type('text/plain; charset=utf-8').send(latest.note);
  });

  app.get('/v1/evidence/key', async (_request, reply) =>
    reply.type('text/plain; charset=utf-8').send(`${o.notary.verifierKey}\n`),
  );

  app.get<{ Querystring: Query<'getEvidenceInclusionProof'> }>(
    '/v1/evidence/proofs/inclusion',
    { schema: hubContract.routeSchema('getEvidenceInclusionProof') },
    async (request) => {
      const { seq, size } = request.query;
      const proof = log.inclusion(seq, size);
      return {
        seq,
        leafIndex: proof.leafIndex,
        treeSize: proof.treeSize,
        leafHash: proof.leafHash.toString('base64'),
        inclusionProof: proof.inclusionProof.map((h) => h.toString('base64')),
      };
    },
  );

  app.get<{ Querystring: Query<'getEvidenceConsistencyProof'> }>(
    '/v1/evidence/proofs/consistency',
    { schema: hubContract.routeSchema('getEvidenceConsistencyProof') },
    async (request) => {
      const { first, second } = request.query;
      return { first, second, consistencyProof: log.consistency(first, second).map((h) => h.toString('base64')) };
    },
  );
}
