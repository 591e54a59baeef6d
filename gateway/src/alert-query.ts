import { BadRequest } from './errors.ts';
import type { AlertQuery } from './hub-store.ts';

/**
 * The query of an alert page (GET /v1/alerts, GET /v1/market-alerts) as the store reads it,
 * once the contract's schema has checked its form and defaulted `limit`: the times in the form
 * alerts are kept in, and `from` not after `to`. What the caller may read (its products, its
 * market) is the route's to decide.
 */
export function alertQueryOf(query: Omit<AlertQuery, 'from' | 'to'> & { from?: string; to?: string }): AlertQuery {
  const { from, to, ...rest } = query;
  const range = {
    ...(from === undefined ? {} : { from: instant('from', from) }),
    ...(to === undefined ? {} : { to: instant('to', to) }),
  };
  if (range.from !== undefined && range.to !== undefined && range.from > range.to) {
    throw new BadRequest(`from (${from}) is after to (${to})`);
  }
  return { ...rest, ...range };
}

/**
 * A date-time of the query in the form alerts are kept in (ISO 8601 UTC, milliseconds), so that
 * it compares with their `raisedAt` as text; refused when no clock has it (a leap second).
 */
function instant(name: string, value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new BadRequest(`${name} (${value}) is not a time`);
  return new Date(ms).toISOString();
}
