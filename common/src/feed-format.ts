import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { JWK } from 'jose';
import type { components } from '../../openapi/generated/hub.ts';
import type { ChainEntry } from './hash-chain.ts';

/**
 * What the hub sends a market's verifier nodes, in one place: the feed records, the snapshot
 * lines and the snapshot's pack rows, with their encoders and decoders. The shapes are the
 * contract's (openapi/hub.yaml `FeedRecordEntry`, `FeedRecord`, `SnapshotLine`); the gateway
 * writes them (gateway/src/feed.ts, hub-store.ts) and the nodes read them (verifier/src/
 * hub-client.ts, replica.ts, replication.ts).
 *
 * It stops at the format: the hash chain's link and hash are checked by the node's replica, the
 * order and completeness of a snapshot by its replicator.
 */

type Schemas = components['schemas'];

/**
 * The contract's signing keys (`PublicJwk`: `kty` and `kid` always present) typed as jose's `JWK`,
 * which both sides hand to jose and which declares every member optional.
 */
type WithJoseKeys<T> = T extends { type: 'signing-keys' } ? Omit<T, 'keys'> & { keys: JWK[] } : T;

/** A change the verifier nodes of a market apply (openapi/hub.yaml `FeedRecord`). */
export type FeedRecord = WithJoseKeys<Schemas['FeedRecord']>;

/** One line of `/v1/feed/{market}/records`: a feed record with its place in the hash chain. */
export type FeedRecordEntry = ChainEntry<FeedRecord>;

/** One line of `/v1/feed/{market}/snapshot` (openapi/hub.yaml `SnapshotLine`). */
export type SnapshotLine = WithJoseKeys<Schemas['SnapshotLine']>;

/**
 * A pack as the hub and the nodes keep it (compact: millions of these), and as a snapshot row
 * carries it.
 */
export interface PackRow {
  /** Batch id. */
  b: string;
  /** Pack state; ACTIVE until decommissioned. */
  s: string;
  /** Who decommissioned it (client id, location) and when (epoch ms): what an undo is checked against. */
  by?: Schemas['DecommissionedBy'];
  at?: number;
}

/** One NDJSON line: the JSON of `value`, then LF. */
export function encodeLine(value: SnapshotLine | FeedRecordEntry): string {
  return `${JSON.stringify(value)}\n`;
}

/** The records of a `/records` answer, in order (its body is read whole: at most one page). */
export function decodeRecords(text: string): FeedRecordEntry[] {
  const out: FeedRecordEntry[] = [];
  for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as FeedRecordEntry);
  return out;
}

/** The lines of a snapshot as they arrive (streamed: a market may hold millions of packs). */
export async function* decodeSnapshot(body: Readable): AsyncGenerator<SnapshotLine> {
  const lines = createInterface({ input: body, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) if (line) yield JSON.parse(line) as SnapshotLine;
}

/**
 * A pack as a row of a snapshot's `packs` line: `serial TAB batch TAB state`, and for a
 * decommissioned pack `TAB clientId TAB location TAB at` (epoch ms). Rows are joined with LF.
 */
export function encodePackRow(serial: string, pack: PackRow): string {
  const by = pack.by ? `\t${pack.by.clientId}\t${pack.by.location}\t${pack.at ?? ''}` : '';
  return `${serial}\t${pack.b}\t${pack.s}${by}`;
}

/** Calls `each` with every row of a snapshot's `packs` line, in order. */
export function decodePackRows(rows: string, each: (serial: string, pack: PackRow) => void): void {
  for (const row of rows.split('\n')) {
    const [serial, b, s, clientId, location, at] = row.split('\t') as [
      string,
      string,
      string,
      string?,
      string?,
      string?,
    ];
    each(serial, clientId ? { b, s, by: { clientId, location: location ?? '' }, at: Number(at) } : { b, s });
  }
}
