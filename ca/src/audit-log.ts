import { type ChainEntry, type ChainVerification, HashChain } from '../../common/src/hash-chain.ts';
import type { Store } from '../../common/src/store.ts';

export type AuditAction = 'init' | 'issue' | 'renew' | 'revoke' | 'crl' | 'export-p12' | 'admin-access';

/** Who did what, when, to which certificate, and how it ended. */
export interface AuditRecord {
  time: string;
  actor: string;
  action: AuditAction;
  serial?: string | undefined;
  outcome: 'ok' | 'refused';
  code?: string | undefined;
  detail?: string | undefined;
}

/** The CA's hash-chained audit log: an entry per operation, refused ones included. */
export class AuditLog {
  private readonly chain: HashChain<AuditRecord>;

  constructor(store: Store) {
    this.chain = new HashChain(store.db<ChainEntry<AuditRecord>, number>('audit-log'));
  }

  /** Inside a write transaction, together with the change it records. */
  append(record: Omit<AuditRecord, 'time'>): ChainEntry<AuditRecord> {
    return this.chain.append({ time: new Date().toISOString(), ...record });
  }

  /** Number of the last entry; 0 for an empty log. */
  lastSeq(): number {
    return this.chain.last()?.seq ?? 0;
  }

  entries(fromSeq = 1): Iterable<ChainEntry<AuditRecord>> {
    return this.chain.entries(fromSeq);
  }

  verify(fromSeq = 1): ChainVerification {
    return this.chain.verify(fromSeq);
  }
}
