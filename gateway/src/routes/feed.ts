import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JWK } from 'jose';
import type { Transaction } from 'lmdb';
import { EVIDENCE_CHECKPOINT_HEADER } from '../../../common/src/checkpoint.ts';
import type { operations } from '../../../openapi/generated/hub.ts';
import type { ClientIdentifier, ClientIdentity } from '../client-identity.ts';
import { FeedUnknown, WrongMarket } from '../errors.ts';
import { type FeedNotifier, SnapshotSlots, snapshotStream } from '../feed.ts';
import type { HubStore } from '../hub-store.ts';
import { hubContract } from '../master-data.ts';
import { identifyCallers } from './caller.ts';

interface FeedRoutesOptions {
  store: HubStore;
  identifier: ClientIdentifier;
  /** Wakes long-polls after a commit that appended to their market's feed. */
  notifier: FeedNotifier;
  /** The public token signing keys every snapshot carries, read in the snapshot's transaction. */
  signingKeys(read: { transaction: Transaction }): JWK[];
}

/**
 * Snapshots (feed.ts `SnapshotSlots`): one at a time per node certificate, 16 at once in all, and
 * the connection closed when its reader has read nothing for a minute.
 */
const SNAPSHOT_LIMITS = { perClient: 1, total: 16, stallMs: 60_000 };
/** What `/records` sends and waits at most, whatever the reader asks (openapi/hub.yaml). */
const MAX_RECORDS = 10_000;
const MAX_WAIT_MS = 60_000;
/**
 * Bytes one `/records` answer holds at most, past its first record: records of packs carry up to
 * 10,000 serials each, so a full page could be a gigabyte, held in memory for each reader.
 */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
const READERS = ['verifier-node'] as const;

type MarketParams = { market: string };
/** The query after the contract's schema has checked it and filled in its defaults. */
type RecordsQuery = Required<NonNullable<operations['getFeedRecords']['parameters']['query']>>;

/**
 * What verifier nodes read: the feed of their own market (a verifier-node certificate of that
 * market, for a market the hub serves), as a snapshot to start from and as records long-polled
 * after a sequence number.
 */
export async function feedRoutes(app: FastifyInstance, o: FeedRoutesOptions): Promise<void> {
  const { store, notifier } = o;
  /** Feed readers are the verifier nodes of that market, which the hub serves. */
  const readsItsMarket = (client: ClientIdentity, request: FastifyRequest): void => {
    const { market } = request.params as MarketParams;
    // Before anything is opened: a market not configured has no feed, and never gets one.
    if (!store.serves(market)) throw new FeedUnknown(`This hub serves no market ${market}`);
    if (client.market !== market)
      throw new WrongMarket(`This node serves ${client.market ?? 'no market'}, not ${market}`);
  };
  identifyCallers(app, o.identifier, READERS, readsItsMarket);

  const snapshots = new SnapshotSlots(SNAPSHOT_LIMITS);
  app.get<{ Params: MarketParams }>('/v1/feed/:market/snapshot', async (request, reply) => {
    const release = snapshots.claim(request.client.fingerprint);
    // A reader that reads nothing for this long loses its connection, and with it the snapshot
    // and its read transaction (SnapshotSlots).
    const socket = request.raw.socket;
    const stalled = () => socket.destroy();
    socket.setTimeout(SNAPSHOT_LIMITS.stallMs, stalled);
    reply.raw.once('close', () => {
      release();
      // The timeout itself is left: Node sets its own on a kept-alive socket after the answer.
      socket.off('timeout', stalled);
    });
    try {
      return reply.type('application/x-ndjson').send(snapshotStream(store, request.params.market, o.signingKeys));
    } catch (err) {
      release();
      throw err;
    }
  });

  app.get<{ Params: MarketParams; Querystring: RecordsQuery }>(
    '/v1/feed/:market/records',
    // The contract's query schema only: a market it does not serve is the hook's 404, not a 400.
    { schema: { querystring: hubContract.routeSchema('getFeedRecords').querystring } },
    async (request, reply) => {
      const { market } = request.params;
      const { after } = request.query;
      const limit = Math.min(request.query.limit || 1, MAX_RECORDS);
      const waitMs = Math.min(request.query.wait, MAX_WAIT_MS);
      /** The NDJSON lines after `after`: at most `limit` records and MAX_ANSWER_BYTES past the first. */
      const page = (): string => {
        let body = '';
        let count = 0;
        for (const entry of store.feed(market).entries(after + 1)) {
          const line = `${JSON.stringify(entry)}\n`;
          if (count > 0 && body.length + line.length > MAX_ANSWER_BYTES) break;
          body += line;
          if (++count >= limit) break;
        }
        return body;
      };
      let records = page();
      if (records.length === 0 && waitMs > 0) {
        const closed = new AbortController();
        request.raw.once('close', () => closed.abort());
        // Woken by this process's commits; looking again every second also catches records that
        // another process appended (`packtrust-gateway client disable` on the same store).
        const until = Date.now() + waitMs;
        while (records.length === 0 && !closed.signal.aborted && !notifier.closing) {
          const left = until - Date.now();
          if (left <= 0) break;
          await notifier.wait(market, Math.min(left, 1000), closed.signal);
          // The certificate is checked again each time: a node revoked while it waits is told
          // so within a second of the gateway's CRL listing it (401), not at the end of its wait.
          readsItsMarket(o.identifier.identify(request, READERS), request);
          records = page();
        }
      }
      const last = store.feed(market).last();
      // The newest evidence checkpoint rides along: nodes witness the log (verifier/src/log-witness.ts).
      const checkpoint = store.evidence.latestCheckpoint();
      if (checkpoint) reply.header(EVIDENCE_CHECKPOINT_HEADER, Buffer.from(checkpoint.note).toString('base64url'));
      return reply
        .type('application/x-ndjson')
        .header('x-feed-last-seq', String(last?.seq ?? 0))
        .send(records);
    },
  );
}
