import { companyPrefixesOf } from '../../common/src/gs1.ts';
import { type ChainEntry, HashChain } from '../../common/src/hash-chain.ts';
import type { Database, Store } from '../../common/src/store.ts';

/** A GS1 company prefix (or a national agency's range of NTINs) and the organisation it belongs to. */
export interface CompanyPrefix {
  /** 4 to 12 digits, read after the indicator digit of a product code (common/src/gs1.ts). */
  prefix: string;
  org: string;
  /** When it was registered for, or moved to, this organisation. */
  since: string;
}

/** One change of the prefix registry, made by onboarding staff (`packtrust-gateway prefix`). */
export interface PrefixAuditRecord {
  time: string;
  /** Who ran the command (`cli:user@host`). */
  actor: string;
  action: 'add' | 'move' | 'remove';
  prefix: string;
  /** The owner after the change; for `remove`, the owner it had. */
  org: string;
  /** `move`: the owner before, and how many products changed owner with the prefix. */
  from?: string;
  products?: number;
}

/**
 * The prefix registry's tables in the hub store: `prefixes` (key: the prefix digits) and the
 * hash-chained `prefix-audit` log. The rules (no overlaps, one owner, a prefix moves with its
 * products) are prefixes.ts's; methods marked "inside a write transaction" run in the hub
 * store's transaction.
 */
export class PrefixStore {
  private readonly prefixes: Database<CompanyPrefix, string>;
  readonly audit: HashChain<PrefixAuditRecord>;

  constructor(store: Store) {
    this.prefixes = store.db('prefixes');
    this.audit = new HashChain(store.db<ChainEntry<PrefixAuditRecord>, number>('prefix-audit'));
  }

  /** The registry's entry for exactly these digits. */
  get(prefix: string): CompanyPrefix | undefined {
    return this.prefixes.get(prefix);
  }

  /** The registered prefix a product code falls under: the longest one that matches. */
  of(productCode: string): CompanyPrefix | undefined {
    for (const candidate of companyPrefixesOf(productCode)) {
      const found = this.prefixes.get(candidate);
      if (found) return found;
    }
    return undefined;
  }

  /** Registered prefixes that overlap `prefix`: itself, the shorter ones it extends, the longer ones extending it. */
  overlapping(prefix: string): CompanyPrefix[] {
    const out: CompanyPrefix[] = [];
    for (let n = 1; n < prefix.length; n++) {
      const shorter = this.prefixes.get(prefix.slice(0, n));
      if (shorter) out.push(shorter);
    }
    for (const { value } of this.prefixes.getRange({ start: prefix, end: `${prefix}\uffff` })) out.push(value);
    return out;
  }

  /** Every registered prefix in digit order, or an organisation's. */
  list(org?: string): CompanyPrefix[] {
    const out: CompanyPrefix[] = [];
    for (const { value } of this.prefixes.getRange()) if (org === undefined || value.org === org) out.push(value);
    return out;
  }

  /** Inside a write transaction: registers a prefix, or gives it its new owner. */
  put(entry: CompanyPrefix): void {
    this.prefixes.putSync(entry.prefix, entry);
  }

  /** Inside a write transaction. */
  remove(prefix: string): void {
    this.prefixes.removeSync(prefix);
  }
}
