import { type ChainEntry, HashChain } from '../../../common/src/hash-chain.ts';
import type { Logger } from '../../../common/src/log.ts';
import { RefusalAudit } from '../../../common/src/refusal-audit.ts';
import type { Store } from '../../../common/src/store.ts';

/** A refused token request, as written in the `oauth-audit` log. */
export interface OAuthRefusal {
  time: string;
  event: 'auth-failed' | 'rate-limited';
  /** As the request named it (unauthenticated: any string, cut to 128 characters). */
  clientId?: string;
  address: string;
  error: string;
  description?: string;
}

/** A window's count of refusals, when more came than are written one by one (RefusalAudit). */
export interface OAuthRefusalSummary {
  time: string;
  event: 'refusals-counted';
  from: string;
  to: string;
  /** Per client and address: the first refusal's fields, how many came, how many are only counted here. */
  refusals: (Omit<OAuthRefusal, 'time' | 'description'> & { count: number; unrecorded: number })[];
  /** Refusals from clients and addresses beyond the per-window limit of keys. */
  otherRefusals: number;
}

export type OAuthAuditRecord = OAuthRefusal | OAuthRefusalSummary;

/**
 * Refusals anyone can cause are durable writes: per minute, the first 5 of each client and
 * address and at most 100 in all are kept verbatim, the rest counted in one summary record, with
 * at most 1,000 clients and addresses counted one by one (common/src/refusal-audit.ts).
 */
const REFUSAL_AUDIT = { intervalMs: 60_000, verbatimPerKey: 5, verbatimPerWindow: 100, maxKeys: 1000 };

/**
 * The hash-chained `oauth-audit` log of refused token requests (failed client authentication,
 * rate limits), kept bounded whatever clients send. What a refusal is, is the provider's.
 */
export class OAuthAudit {
  readonly log: HashChain<OAuthAuditRecord>;
  private readonly refusals: RefusalAudit<OAuthAuditRecord>;

  constructor(store: Store, logger: Logger) {
    const log = new HashChain(store.db<ChainEntry<OAuthAuditRecord>, number>('oauth-audit'));
    this.log = log;
    this.refusals = new RefusalAudit<OAuthAuditRecord>({
      ...REFUSAL_AUDIT,
      write: (records) =>
        store
          .transaction(() => {
            for (const r of records) log.append(r);
          })
          .catch((err: unknown) => logger.error({ err }, 'oauth audit failed')),
      summary: (w) => ({
        time: w.to,
        event: 'refusals-counted',
        from: w.from,
        to: w.to,
        refusals: w.keys.map(({ first, count, unrecorded }) => {
          const r = first as OAuthRefusal;
          return {
            event: r.event,
            ...(r.clientId === undefined ? {} : { clientId: r.clientId }),
            address: r.address,
            error: r.error,
            count,
            unrecorded,
          };
        }),
        otherRefusals: w.otherRefusals,
      }),
    });
  }

  /** Counts a refusal, written verbatim while few come from the same client and address. */
  refuse(r: OAuthRefusal): Promise<void> {
    return this.refusals.record(`${r.event}\n${r.clientId ?? ''}\n${r.address}`, r);
  }

  /** Writes the count of the refusals not yet written (before the store closes). */
  close(): Promise<void> {
    return this.refusals.close();
  }
}
