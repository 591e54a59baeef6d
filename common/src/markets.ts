import { z } from 'zod';

/**
 * The markets of the Falsified Medicines Directive (2011/62/EU) and Delegated Regulation (EU)
 * 2016/161: the 27 EU member states and the EEA states Iceland, Liechtenstein and Norway, as ISO
 * 3166-1 alpha-2 codes (Greece as `GR`, as the European hub names it). Northern Ireland (`XI`) is
 * not in the default: under the Windsor Framework the safety features no longer apply there since
 * 1 January 2025; an operator who still needs it adds it to the configured list.
 *
 * A market is a place the hub keeps state for (a feed, its nodes' tokens): the hub serves only
 * the operator's configured list, never one a client names (docs/operations.md, "Markets").
 */
export const FMD_MARKETS = [
  'AT',
  'BE',
  'BG',
  'CY',
  'CZ',
  'DE',
  'DK',
  'EE',
  'ES',
  'FI',
  'FR',
  'GR',
  'HR',
  'HU',
  'IE',
  'IS',
  'IT',
  'LI',
  'LT',
  'LU',
  'LV',
  'MT',
  'NL',
  'NO',
  'PL',
  'PT',
  'RO',
  'SE',
  'SI',
  'SK',
] as const;

/** A configured list of markets: an array, or a comma-separated string (from the environment). */
export const marketListSchema = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z
    .array(z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'))
    .min(1)
    .max(64)
    .refine((l) => new Set(l).size === l.length, 'lists a market twice'),
);
