import { z } from 'zod';
import { AUDIENCE_TEMPLATE } from '../../common/src/access-tokens.ts';
import { loadConfig } from '../../common/src/config.ts';
import { httpTimeoutsSchema } from '../../common/src/http.ts';

/**
 * Feed records per request and per transaction. Pack-state records (one per decommissioned pack)
 * come at thousands per second, and each transaction is one durable commit: 1,000 keeps the node
 * ahead of 10,000 events/s (lag p99 86 ms in bench:replication; 200 fell behind, p99 688 ms).
 */
export const DEFAULT_FEED_PAGE_SIZE = 1000;

/**
 * How long a feed request waits at the hub for a record when there is none (long poll), in ms: a
 * new record reaches the node as soon as the hub commits it, and an idle node asks again this often.
 */
export const DEFAULT_FEED_WAIT_MS = 20_000;

/**
 * How long a call to the hub may take, connect, send and answer together (a feed long-poll: its
 * wait plus this; the snapshot, streamed: its answer's start, and each wait for more of it). Past
 * it a state change is kept in the outbox and the pharmacy is answered `pending` at once: a hung
 * hub must not hold a pharmacy for minutes, nor a node's bootstrap for ever.
 */
export const DEFAULT_HUB_DEADLINE_MS = 2000;

/** Bulk state changes up to one page to the hub are answered at once (routes/pharmacy.ts). */
export const DEFAULT_BULK_SYNC_MAX_PACKS = 1000;

/** Bulk jobs one client may have waiting or running at once (bulk-jobs.ts). */
export const DEFAULT_BULK_MAX_JOBS_PER_CLIENT = 2;

/**
 * The window in which a client's alerts are bounded (docs/domain.md §5, "Alert floods"): the
 * first few of each (client, product, alert code) go one by one, the rest are counted in one
 * aggregated alert sent when the window ends. Longer windows send fewer alerts, later.
 */
export const DEFAULT_ALERT_WINDOW_MS = 60_000;

const port = z.coerce.number().int().min(0).max(65535);

/** A verifier node's configuration: file (`PACKTRUST_VERIFIER_CONFIG`), `PACKTRUST_VERIFIER_*`, flags. */
const verifierConfigSchema = z.object({
  market: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'),
  nodeId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  hubUrl: z.url().default('https://127.0.0.1:8443'),
  /** The hub's OAuth issuer; default `<hubUrl>/oauth`. */
  issuer: z.url().optional(),
  /** Must match the gateway's: the audience of this market's access tokens. */
  audienceTemplate: z.string().includes('{market}').default(AUDIENCE_TEMPLATE),
  dataDir: z.string().min(1).optional(),
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(9443),
  /** The node's verifier-node certificate (with chain) and key, and the packtrust CA chain, PEM files. */
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  caChainFile: z.string().min(1),
  /**
   * The note verifier key of the hub's evidence log checkpoints (`packtrust-gateway evidence key`),
   * from the operator, never from the hub: with it the node witnesses the log (log-witness.ts).
   * Without it the node keeps what the feed brings unchecked and serves no checkpoint.
   */
  evidenceLogKey: z
    .string()
    .regex(/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/, 'a note verifier key')
    .optional(),
  /** The feed long-poll wait (ms); at most the hub's 60,000. */
  feedWaitMs: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_FEED_WAIT_MS),
  /** Deadline of every call to the hub (DEFAULT_HUB_DEADLINE_MS says what it covers). */
  hubDeadlineMs: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_HUB_DEADLINE_MS),
  /** The window of a client's alert bounds, ms (DEFAULT_ALERT_WINDOW_MS says what it does). */
  alertWindowMs: z.coerce.number().int().min(1000).max(3_600_000).default(DEFAULT_ALERT_WINDOW_MS),
  /** Bulk state changes of up to this many packs are answered at once; larger ones become jobs (bulk-jobs.ts). */
  bulkSyncMaxPacks: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_BULK_SYNC_MAX_PACKS),
  /** Bulk jobs one client may have waiting or running at once; more are refused 429. */
  bulkMaxJobsPerClient: z.coerce.number().int().min(1).max(100).default(DEFAULT_BULK_MAX_JOBS_PER_CLIENT),
  /** How long a finished bulk job's results are kept, in hours. */
  bulkJobRetentionHours: z.coerce
    .number()
    .min(0.01)
    .max(24 * 30)
    .default(24),
  /** Feed records per request (and per transaction); pack records hold up to 10,000 packs each. */
  feedPageSize: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_FEED_PAGE_SIZE),
  /** Time limits of the pharmacy listener (common/src/http.ts `httpTimeoutsSchema`). */
  ...httpTimeoutsSchema.shape,
});

export type VerifierConfig = z.output<typeof verifierConfigSchema>;

export function loadVerifierConfig(
  overrides: Record<string, unknown> = {},
  file = process.env.PACKTRUST_VERIFIER_CONFIG,
): VerifierConfig {
  return loadConfig(verifierConfigSchema, { file, envPrefix: 'PACKTRUST_VERIFIER_', overrides });
}
