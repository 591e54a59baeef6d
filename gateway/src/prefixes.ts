import { companyPrefixProblem } from '../../common/src/gs1.ts';
import type { ChainEntry } from '../../common/src/hash-chain.ts';
import { isOrganisationId } from '../../common/src/vocabulary.ts';
import { PrefixInUse, PrefixInvalid, PrefixNotOwned, PrefixOverlap, PrefixUnknown } from './errors.ts';
import type { HubStore, Product } from './hub-store.ts';
import type { CompanyPrefix, PrefixAuditRecord, PrefixStore } from './prefix-store.ts';

/**
 * Which organisation may register which product codes: the hub's registry of GS1 company
 * prefixes (ARCHITECTURE.md, "Product codes belong to company prefixes"). Onboarding staff keep
 * it with `packtrust-gateway prefix`; the product route asks it before a new product code is
 * registered.
 *
 * Rules: one owner per prefix, and no two registered prefixes overlap (GS1 never issues a prefix
 * inside another, so an overlap is an onboarding mistake, whoever holds the other one). A prefix
 * moves with its products. Every change is appended to the hash-chained `prefix-audit` log in
 * the same transaction. What it leaves to others: who the organisation is (its id is the one the
 * CA writes into its certificates) and whether a product code is a valid GTIN (master-data.ts).
 */

/** How many product codes an error message names. */
const NAMED = 5;

/**
 * Inside or outside a write transaction: refuses a product code that is new to the hub unless
 * the registered prefix it falls under belongs to `org`.
 */
export function checkNewProductCode(prefixes: Pick<PrefixStore, 'of'>, org: string, productCode: string): void {
  const owning = prefixes.of(productCode);
  if (owning?.org === org) return;
  throw new PrefixNotOwned(
    owning
      ? `Product code ${productCode} is under GS1 company prefix ${owning.prefix}, which is registered for another organisation`
      : `Product code ${productCode} is under no GS1 company prefix registered for ${org}; ask onboarding to register your company prefix`,
  );
}

interface PrefixMove {
  prefix: string;
  from: string;
  to: string;
  /** Products that changed owner with it. */
  products: number;
}

/** The registry's changes, each one transaction; `actor` is recorded in the audit log. */
export class PrefixRegistry {
  constructor(
    private readonly hub: HubStore,
    private readonly actor: string,
  ) {}

  list(org?: string): CompanyPrefix[] {
    return this.hub.prefixes.list(org);
  }

  /**
   * Registers `prefix` for `org`. Refused when it overlaps a registered prefix or when products of
   * another organisation fall under it (then it belongs to that one: register it there and move
   * it). Registering a prefix again for its owner changes nothing (`added: false`).
   */
  async add(org: string, prefix: string): Promise<{ prefix: CompanyPrefix; added: boolean }> {
    checkInput({ prefix, org });
    return this.hub.transaction(() => {
      const overlapping = this.hub.prefixes.overlapping(prefix);
      const same = overlapping.find((p) => p.prefix === prefix);
      if (same?.org === org) return { prefix: same, added: false };
      const other = same ?? overlapping[0];
      if (other) {
        throw new PrefixOverlap(
          other.prefix === prefix
            ? `Prefix ${prefix} is registered for ${other.org}; \`prefix move\` gives it to another organisation`
            : `Prefix ${prefix} overlaps ${other.prefix}, registered for ${other.org}; GS1 prefixes never overlap`,
        );
      }
      const foreign = firstProducts(this.hub.productsUnder(prefix), (p) => p.owner !== org);
      if (foreign.length > 0) {
        throw new PrefixOverlap(
          `Products under ${prefix} are registered by ${foreign[0]!.owner} (${codes(foreign)}); ` +
            'register the prefix for that organisation, then move it if it has changed hands',
        );
      }
      const entry: CompanyPrefix = { prefix, org, since: new Date().toISOString() };
      this.hub.prefixes.put(entry);
      this.audit({ time: entry.since, action: 'add', prefix, org });
      return { prefix: entry, added: true };
    });
  }

  /**
   * Gives `prefix` to `to` with every product under it: each gets the new owner and is published
   * on the feeds of its markets, so verifier nodes learn of it; all in one transaction. Moving a
   * prefix to its owner changes nothing (`products: 0`).
   */
  async move(prefix: string, to: string): Promise<PrefixMove> {
    checkInput({ prefix, org: to });
    return this.hub.transaction(() => {
      const entry = this.registered(prefix);
      if (entry.org === to) return { prefix, from: to, to, products: 0 };
      const moving = [...this.hub.productsUnder(prefix)].filter((p) => p.owner !== to);
      const time = new Date().toISOString();
      this.hub.prefixes.put({ prefix, org: to, since: time });
      const { seq } = this.audit({ time, action: 'move', prefix, org: to, from: entry.org, products: moving.length });
      for (const product of moving) {
        const moved: Product = { ...product, owner: to, updatedAt: time };
        this.hub.putProduct(moved);
        this.hub.publish(moved.markets, { type: 'product', product: moved, prefixAuditSeq: seq });
      }
      return { prefix, from: entry.org, to, products: moving.length };
    });
  }

  /** Removes a prefix under which no product is registered (`move` is for one that changes hands). */
  async remove(prefix: string): Promise<CompanyPrefix> {
    checkInput({ prefix });
    return this.hub.transaction(() => {
      const entry = this.registered(prefix);
      const products = firstProducts(this.hub.productsUnder(prefix), () => true);
      if (products.length > 0) {
        throw new PrefixInUse(
          `Products are registered under ${prefix} (${codes(products)}); \`prefix move\` gives them to another organisation`,
        );
      }
      this.hub.prefixes.remove(prefix);
      this.audit({ time: new Date().toISOString(), action: 'remove', prefix, org: entry.org });
      return entry;
    });
  }

  private registered(prefix: string): CompanyPrefix {
    const entry = this.hub.prefixes.get(prefix);
    if (!entry) throw new PrefixUnknown(`Prefix ${prefix} is not registered`);
    return entry;
  }

  private audit(record: Omit<PrefixAuditRecord, 'actor'>): ChainEntry<PrefixAuditRecord> {
    return this.hub.prefixes.audit.append({ ...record, actor: this.actor });
  }
}

function checkInput(input: { prefix: string; org?: string }): void {
  const problems: string[] = [];
  const prefix = companyPrefixProblem(input.prefix);
  if (prefix) problems.push(`prefix "${input.prefix}" ${prefix}`);
  if (input.org !== undefined && !isOrganisationId(input.org)) {
    problems.push(`organisation id "${input.org}" must be 1-64 letters, digits, ".", "_", ":" or "-"`);
  }
  if (problems.length > 0) throw new PrefixInvalid(problems.join('; '));
}

/** Up to {@link NAMED} products that match, and one more to tell that there are others. */
function firstProducts(products: Iterable<Product>, match: (p: Product) => boolean): Product[] {
  const out: Product[] = [];
  for (const p of products) {
    if (!match(p)) continue;
    out.push(p);
    if (out.length > NAMED) break;
  }
  return out;
}

const codes = (products: Product[]): string =>
  products
    .slice(0, NAMED)
    .map((p) => p.productCode)
    .join(', ') + (products.length > NAMED ? ', …' : '');
