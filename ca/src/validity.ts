/** Time spans the CA's issuance and CRLs share; a leaf's lifetime is its profile's (profiles.ts). */

export const DAY_MS = 86_400_000;

/**
 * How far back `notBefore` and a CRL's `thisUpdate` are set: it absorbs small clock differences
 * between the CA and relying parties.
 */
export const BACKDATE_MS = 60_000;
