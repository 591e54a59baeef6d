import { setImmediate } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpServer } from '../../../common/src/http.ts';
import { OpenApiContract } from '../../../common/src/openapi.ts';
import { isOperation, type Operation } from '../../../common/src/pack-rules.ts';
import type { components } from '../../../openapi/generated/verifier.ts';
import type { AlertOutbox } from '../alerts.ts';
import type { BulkJobs } from '../bulk-jobs.ts';
import {
  certificateRevoked,
  HubRefused,
  JobUnknown,
  NotServing,
  OperationUnknown,
  PackRepeated,
  TxUnknown,
} from '../errors.ts';
import type { Replica } from '../replica.ts';
import type { Replicator } from '../replication.ts';
import { eachPack, packOf } from '../requests.ts';
import type { AnswerSigner, SignatureRequest } from '../signed-answers.ts';
import type { StateChanges } from '../state-changes.ts';
import type { Caller, TokenValidator } from '../token-validator.ts';
import { type AlertCode, memoised, type PackQuery, type ReturnCode, verifyPack } from '../verification.ts';

type VerifyRequest = components['schemas']['VerifyRequest'];
type VerifyResult = components['schemas']['VerifyResult'];
type ChangeBody = components['schemas']['ChangeRequest'];

declare module 'fastify' {
  interface FastifyRequest {
    /** The pharmacy calling a verifier node, from its access token (verifier/src/routes/pharmacy.ts). */
    caller: Caller;
    /** The signature the caller asked for with `Accept-Signature`, checked (signed-answers.ts). */
    signatureRequest: SignatureRequest | undefined;
  }
}

const contract = new OpenApiContract(new URL('../../../openapi/verifier.yaml', import.meta.url).pathname);

/** Packs verified between two turns of the event loop in a bulk request (about 1–3 ms of reads). */
const BULK_SLICE = 1000;

export interface PharmacyRoutesOptions {
  replica: Replica;
  replicator: Replicator;
  validator: TokenValidator;
  alerts: AlertOutbox;
  stateChanges: StateChanges;
  bulkJobs: BulkJobs;
  /** Bulk state changes up to this many packs are answered at once; larger ones (or `Prefer: respond-async`) become jobs. */
  bulkSyncMaxPacks: number;
  /** Signs the answers of callers that send `Accept-Signature`. */
  answers: AnswerSigner;
}

/**
 * What pharmacies, hospitals and wholesalers call (openapi/verifier.yaml): verify, single and
 * bulk, and the state changes. An `onRequest` hook works out who calls, once per request, from
 * the headers alone: a request without a valid token is refused before its body (up to 4 MiB) is
 * read and parsed, so anyone who can reach the node costs it no more than a token check.
 */
export async function pharmacyRoutes(app: HttpServer, options: PharmacyRoutesOptions): Promise<void> {
  const { replica, replicator, validator, alerts, stateChanges, bulkJobs, answers } = options;
  let today = '';
  let todayAt = 0;
  const currentDate = () => {
    const now = Date.now();
    if (now - todayAt > 1000) {
      today = new Date(now).toISOString().slice(0, 10);
      todayAt = now;
    }
    return today;
  };

  app.decorateRequest('caller', null as unknown as Caller);
  app.decorateRequest('signatureRequest', undefined);
  app.addHook('onRequest', async (request) => {
    request.caller = await validator.validate(request.headers.authorization);
    const refusal = replicator.certificateRefusal;
    if (refusal) throw certificateRevoked(refusal);
    if (!replicator.serving) throw new NotServing(`replica state: ${replicator.status.state}`);
    const accept = request.headers['accept-signature'];
    if (accept !== undefined) request.signatureRequest = answers.requested([accept].flat().join(', '));
  });
  // An authenticated caller that asked gets its answer signed, whatever it is (a problem too).
  app.addHook('onSend', async (request, reply, payload) => {
    const wanted = request.signatureRequest;
    if (!wanted) return payload;
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : '');
    const message = {
      method: request.method,
      targetUri: `https://${request.headers.host ?? 'localhost'}${request.url}`,
      headers: request.headers as Record<string, string | string[] | undefined>,
    };
    const contentType = reply.getHeader('content-type');
    reply.headers(
      answers.sign(
        message,
        reply.statusCode,
        { 'content-type': contentType === undefined ? undefined : String(contentType) },
        body,
        wanted,
      ),
    );
    return body;
  });
  /** A change that meets the hub's refusal of this node's certificate is answered as every later call. */
  const errorHandler = (err: Error, request: FastifyRequest, reply: FastifyReply) =>
    app.errorHandler(
      err instanceof HubRefused && err.certificateRefused ? certificateRevoked(err) : err,
      request,
      reply,
    );

  /** Verifies packs and raises their alerts in one durable write. */
  const verifyAll = async (queries: PackQuery[], caller: Caller): Promise<VerifyResult[]> => {
    const today = currentDate();
    const raised: { index: number; code: AlertCode; returnCode: ReturnCode; detail: string; pack: PackQuery }[] = [];
    const view = queries.length > 1 ? memoised(replica) : replica;
    const results: VerifyResult[] = new Array(queries.length);
    for (let index = 0; index < queries.length; index++) {
      // A bulk of 10,000 packs reads for tens of milliseconds; let single scans in between.
      if (index > 0 && index % BULK_SLICE === 0) await setImmediate();
      const q = queries[index]!;
      const v = verifyPack(q, view, today);
      const result: VerifyResult = {
        returnCode: v.returnCode,
        detail: v.detail,
        operation: 'verify',
        ...q,
      };
      // A change of this pack waits for the hub here: until it decides, the pack is not ACTIVE here.
      const waiting = v.alert ? undefined : stateChanges.pendingFor(q.productCode, q.serial);
      if (waiting) {
        result.returnCode = 'PENDING';
        result.detail = `a ${waiting} of this pack at this node is waiting for the hub's decision`;
      }
      if (v.state) result.state = v.state;
      if (v.inactiveReason) result.inactiveReason = v.inactiveReason;
      if (v.alert) raised.push({ index, code: v.alert, returnCode: v.returnCode, detail: v.detail, pack: q });
      results[index] = result;
    }
    const alertsRaised = await alerts.raiseAll(
      raised.map(({ index: _index, ...a }) => a),
      caller,
    );
    for (const [i, r] of raised.entries()) results[r.index]!.alert = { code: r.code, id: alertsRaised[i]!.id };
    return results;
  };

  app.post<{ Body: VerifyRequest }>(
    '/v1/packs/verify',
    { schema: contract.routeSchema('verifyPack') },
    async (request) => {
      const [result] = await verifyAll([packOf(request.body)], request.caller);
      return result;
    },
  );

  app.post<{ Body: { packs: VerifyRequest[] } }>(
    '/v1/packs/verify-bulk',
    { schema: contract.routeSchema('verifyPacks') },
    async (request) => ({ results: await verifyAll(eachPack(request.body.packs, packOf), request.caller) }),
  );

  app.post<{ Params: { op: string }; Body: ChangeBody }>(
    '/v1/packs/:op',
    { schema: contract.routeSchema('changePack'), errorHandler },
    async (request, reply) => {
      const op = operationOf(request.params.op);
      const { txId } = request.body;
      const outcome = await stateChanges.change(op, txId, packOf(request.body), request.caller, currentDate());
      return reply.code(outcome.outcome === 'pending' ? 202 : 200).send(outcome);
    },
  );
  app.get<{ Params: { txId: string } }>(
    '/v1/transactions/:txId',
    { schema: contract.routeSchema('getTransaction') },
    async (request, reply) => {
      const outcome = stateChanges.answer(request.caller.clientId, request.params.txId);
      if (!outcome) throw new TxUnknown(`This client made no state change with transaction id ${request.params.txId}`);
      return reply.code(outcome.outcome === 'pending' ? 202 : 200).send(outcome);
    },
  );
  app.post<{ Params: { op: string }; Body: { packs: ChangeBody[] } }>(
    '/v1/packs/:op/bulk',
    { schema: contract.routeSchema('changePacks'), errorHandler },
    async (request, reply) => {
      const op = operationOf(request.params.op);
      // A pack named twice is the caller's mistake, refused like a malformed one: it would cost the
      // hub a decision (and a kept record) per repeat.
      const named = new Set<string>();
      const packs = eachPack(request.body.packs, (p) => {
        const q = packOf(p);
        if (named.has(q.productCode + q.serial)) {
          throw new PackRepeated(`the pack ${q.productCode} ${q.serial} appears more than once in this request`);
        }
        named.add(q.productCode + q.serial);
        return { txId: p.txId, q };
      });
      // One time for the whole request: the token was valid when it was asked, however long the
      // packs take, and the hub checks each event's time against that token.
      const at = Date.now();
      const today = currentDate();
      const preferAsync = /(^|[\s,;])respond-async([\s,;]|$)/i.test(String(request.headers.prefer ?? ''));
      if (packs.length > options.bulkSyncMaxPacks || preferAsync) {
        const job = await bulkJobs.submit(op, packs, request.caller, at, today);
        if (preferAsync) reply.header('preference-applied', 'respond-async');
        return reply.code(202).header('location', `/v1/jobs/${job.jobId}`).send(job);
      }
      return {
        results: await stateChanges.changeAll(op, packs, request.caller, today, at, {
          serving: () => replicator.serving,
        }),
      };
    },
  );
  app.get<{ Params: { jobId: string } }>(
    '/v1/jobs/:jobId',
    { schema: contract.routeSchema('getJob') },
    async (request) => {
      const job = bulkJobs.get(request.caller.clientId, request.params.jobId);
      if (!job) throw new JobUnknown(`This client has no bulk job ${request.params.jobId}`);
      return job;
    },
  );
}

function operationOf(name: string): Operation {
  if (!isOperation(name) || name === ('verify' as string)) {
    throw new OperationUnknown(
      `"${name}" is not an operation; use supply, destroy, export, sample, free-sample, lock, stolen, check-out or undo`,
    );
  }
  return name;
}
