import { setImmediate } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest } from '../../common/src/errors.ts';
import { Gs1Error, parseElementString } from '../../common/src/gs1.ts';
import { createHttpServer, type HttpServer, type TlsOptions } from '../../common/src/http.ts';
import type { Logger } from '../../common/src/log.ts';
import { OpenApiContract } from '../../common/src/openapi.ts';
import { isOperation, type Operation } from '../../common/src/pack-rules.ts';
import type { components } from '../../openapi/generated/verifier.ts';
import type { AlertOutbox } from './alerts.ts';
import { certificateRevoked, DataMatrixInvalid, HubRefused, NotServing, OperationUnknown } from './errors.ts';
import type { Replica } from './replica.ts';
import type { Replicator } from './replication.ts';
import type { StateChanges } from './state-changes.ts';
import type { Caller, TokenValidator } from './token-validator.ts';
import {
  type AlertCode,
  memoised,
  type PackQuery,
  type ReplicaLookup,
  type ReturnCode,
  verifyPack,
} from './verification.ts';

type VerifyRequest = components['schemas']['VerifyRequest'];
type VerifyResult = components['schemas']['VerifyResult'];

const contract = new OpenApiContract(new URL('../../openapi/verifier.yaml', import.meta.url).pathname);

export interface VerifierServerOptions {
  market: string;
  nodeId: string;
  replica: Replica;
  replicator: Replicator;
  validator: TokenValidator;
  alerts: AlertOutbox;
  stateChanges: StateChanges;
  tls?: TlsOptions;
  logger: Logger;
}

/** Packs verified between two turns of the event loop in a bulk request (about 1–3 ms of reads). */
const BULK_SLICE = 1000;

/** The pharmacy API of a verifier node: verify (single and bulk), health and metrics. */
export function createVerifierServer(options: VerifierServerOptions): HttpServer {
  const { replica, replicator, validator, alerts } = options;
  const app = createHttpServer({
    logger: options.logger,
    bodyLimit: 4 * 1024 * 1024,
    ...(options.tls ? { tls: options.tls } : {}),
  });
  const lookup: ReplicaLookup = {
    product: (code) => replica.products.get(code),
    batch: (code, batch) => replica.batches.get(`${code}|${batch}`),
    pack: (code, serial) => replica.packs.get(code + serial),
  };
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

  const authenticate = async (request: FastifyRequest): Promise<Caller> => {
    const caller = await validator.validate(request.headers.authorization);
    const refusal = replicator.certificateRefusal;
    if (refusal) throw certificateRevoked(refusal);
    if (!replicator.serving) throw new NotServing(`replica state: ${replicator.status.state}`);
    return caller;
  };
  /** A change that meets the hub's refusal of this node's certificate is answered as every later call. */
  const errorHandler = (err: Error, request: FastifyRequest, reply: FastifyReply) =>
    app.errorHandler(
      err instanceof HubRefused && err.certificateRefused ? certificateRevoked(err) : err,
      request,
      reply,
    );

  /** Verifies packs and raises their alerts in one durable write. */
  const verifyAll = async (bodies: VerifyRequest[], caller: Caller): Promise<VerifyResult[]> => {
    const today = currentDate();
    const raised: { index: number; code: AlertCode; returnCode: ReturnCode; detail: string; pack: PackQuery }[] = [];
    const view = bodies.length > 1 ? memoised(lookup) : lookup;
    const results: VerifyResult[] = new Array(bodies.length);
    for (let index = 0; index < bodies.length; index++) {
      // A bulk of 10,000 packs reads for tens of milliseconds; let single scans in between.
      if (index > 0 && index % BULK_SLICE === 0) await setImmediate();
      const q = toQuery(bodies[index]!);
      const v = verifyPack(q, view, today);
      const result: VerifyResult = {
        returnCode: v.returnCode,
        detail: v.detail,
        productCode: q.productCode,
        serial: q.serial,
      };
      // A change of this pack waits for the hub here: until it decides, the pack is not ACTIVE here.
      const waiting = v.alert ? undefined : options.stateChanges.pendingFor(q.productCode, q.serial);
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
      const caller = await authenticate(request);
      const [result] = await verifyAll([request.body], caller);
      return result;
    },
  );

  app.post<{ Body: { packs: VerifyRequest[] } }>(
    '/v1/packs/verify-bulk',
    { schema: contract.routeSchema('verifyPacks') },
    async (request) => {
      const caller = await authenticate(request);
      return { results: await verifyAll(request.body.packs, caller) };
    },
  );

  type ChangeBody = VerifyRequest & { txId: string };
  app.post<{ Params: { op: string }; Body: ChangeBody }>(
    '/v1/packs/:op',
    { schema: contract.routeSchema('changePack'), errorHandler },
    async (request, reply) => {
      const caller = await authenticate(request);
      const op = operationOf(request.params.op);
      const outcome = await options.stateChanges.change(
        op,
        request.body.txId,
        toQuery(request.body),
        caller,
        currentDate(),
      );
      return reply.code(outcome.outcome === 'pending' ? 202 : 200).send(outcome);
    },
  );
  app.post<{ Params: { op: string }; Body: { packs: ChangeBody[] } }>(
    '/v1/packs/:op/bulk',
    { schema: contract.routeSchema('changePacks'), errorHandler },
    async (request) => {
      const caller = await authenticate(request);
      const op = operationOf(request.params.op);
      const results = [];
      for (const p of request.body.packs)
        results.push(await options.stateChanges.change(op, p.txId, toQuery(p), caller, currentDate()));
      return { results };
    },
  );

  app.get('/health', { schema: contract.routeSchema('getHealth') }, async () => health());
  app.get('/metrics', async (_req, reply) => {
    const h = health();
    const lines = [
      '# HELP packtrust_feed_applied_seq Last feed record applied to the replica.',
      '# TYPE packtrust_feed_applied_seq gauge',
      `packtrust_feed_applied_seq{market="${h.market}",node="${h.nodeId}"} ${h.appliedSeq}`,
      '# HELP packtrust_feed_hub_seq Newest feed record the hub reported.',
      '# TYPE packtrust_feed_hub_seq gauge',
      `packtrust_feed_hub_seq{market="${h.market}",node="${h.nodeId}"} ${h.hubSeq}`,
      '# HELP packtrust_replication_lag_records Feed records not applied yet.',
      '# TYPE packtrust_replication_lag_records gauge',
      `packtrust_replication_lag_records{market="${h.market}",node="${h.nodeId}"} ${h.lag}`,
      '# HELP packtrust_replica_packs Packs in the replica.',
      '# TYPE packtrust_replica_packs gauge',
      `packtrust_replica_packs{market="${h.market}",node="${h.nodeId}"} ${h.packs}`,
      '# HELP packtrust_serving Whether the node answers (1), or not (0: resynchronising, or its certificate refused).',
      '# TYPE packtrust_serving gauge',
      `packtrust_serving{market="${h.market}",node="${h.nodeId}"} ${h.serving ? 1 : 0}`,
      '# HELP packtrust_alerts_pending Alerts waiting to be delivered to the hub.',
      '# TYPE packtrust_alerts_pending gauge',
      `packtrust_alerts_pending{market="${h.market}",node="${h.nodeId}"} ${h.alertsPending}`,
      '# HELP packtrust_changes_pending State changes waiting for the hub (offline mode).',
      '# TYPE packtrust_changes_pending gauge',
      `packtrust_changes_pending{market="${h.market}",node="${h.nodeId}"} ${h.changesPending}`,
      '# HELP packtrust_dead_letters Alerts and state changes the hub refused for good (see the node log).',
      '# TYPE packtrust_dead_letters gauge',
      `packtrust_dead_letters{market="${h.market}",node="${h.nodeId}"} ${h.deadLetters}`,
      '# HELP process_resident_memory_bytes Resident memory of the node process.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${process.memoryUsage().rss}`,
      '# HELP nodejs_heap_used_bytes V8 heap in use.',
      '# TYPE nodejs_heap_used_bytes gauge',
      `nodejs_heap_used_bytes ${process.memoryUsage().heapUsed}`,
    ];
    return reply.type('text/plain; version=0.0.4').send(`${lines.join('\n')}\n`);
  });

  function health(): components['schemas']['Health'] {
    const s = replicator.status;
    return {
      status: s.state,
      serving: replicator.serving,
      market: options.market,
      nodeId: options.nodeId,
      appliedSeq: s.appliedSeq,
      hubSeq: Math.max(s.hubSeq, s.appliedSeq),
      lag: Math.max(0, s.hubSeq - s.appliedSeq),
      packs: (replica.packs.getStats() as { entryCount: number }).entryCount,
      alertsPending: alerts.pending(),
      changesPending: options.stateChanges.pending(),
      deadLetters: alerts.deadLetters() + options.stateChanges.deadLetters(),
      ...(s.lastError ? { lastError: s.lastError } : {}),
    };
  }

  return app;
}

function operationOf(name: string): Operation {
  if (!isOperation(name) || name === ('verify' as string)) {
    throw new OperationUnknown(
      `"${name}" is not an operation; use supply, destroy, export, sample, free-sample, lock, stolen, check-out or undo`,
    );
  }
  return name;
}

/** A verify request as a pack identifier: the four fields, or the Data Matrix content parsed. */
function toQuery(body: VerifyRequest): PackQuery {
  if (body.dataMatrix !== undefined) {
    try {
      const id = parseElementString(body.dataMatrix);
      return { productCode: id.productCode, serial: id.serial, batch: id.batch, expiry: id.expiry };
    } catch (err) {
      if (err instanceof Gs1Error) throw new DataMatrixInvalid(err.message);
      throw err;
    }
  }
  const { productCode, serial, batch, expiry } = body;
  if (!productCode || !serial || !batch || !expiry) {
    throw new BadRequest('Give productCode, serial, batch and expiry, or dataMatrix');
  }
  return { productCode, serial, batch, expiry };
}
