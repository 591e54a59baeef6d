import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PacktrustError } from '../../common/src/errors.ts';
import * as catalogue from '../src/errors.ts';

/**
 * Codes of the catalogue that no HTTP answer carries: `packtrust-gateway` commands raise them
 * (docs/onboarding.md lists them), or the configuration at start.
 */
const NOT_OVER_HTTP = [
  'CONFIG_INVALID',
  'HUB_EVIDENCE_UNKNOWN',
  'HUB_PREFIX_INVALID',
  'HUB_PREFIX_OVERLAP',
  'HUB_PREFIX_UNKNOWN',
  'HUB_PREFIX_IN_USE',
  'OAUTH_CLIENT_INVALID',
];

const entries = Object.entries(catalogue) as [string, unknown][];
const errors = entries.flatMap(([name, value]) =>
  typeof value === 'function' && value.prototype instanceof PacktrustError
    ? [{ name, code: (value as unknown as { code: string }).code, cls: value as typeof catalogue.BadRequest }]
    : [],
);
const faults = entries.flatMap(([name, value]) =>
  typeof value === 'function' && value.prototype instanceof catalogue.GatewayFault
    ? [{ name, code: (value as unknown as { code: string }).code }]
    : [],
);
const contract = readFileSync(new URL('../../openapi/hub.yaml', import.meta.url), 'utf8');

describe('the gateway error catalogue', () => {
  it('holds each code once', () => {
    const codes = [...errors, ...faults].map((e) => e.code);
    expect(errors.length).toBeGreaterThan(25);
    expect(faults.length).toBeGreaterThan(0);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('lists in openapi/hub.yaml every code an HTTP answer can carry', () => {
    const missing = errors.filter((e) => !NOT_OVER_HTTP.includes(e.code) && !contract.includes(`\`${e.code}\``));
    expect(missing.map((e) => e.code)).toEqual([]);
  });

  it('names only codes it holds as the ones that never reach HTTP', () => {
    expect(NOT_OVER_HTTP.filter((code) => !errors.some((e) => e.code === code))).toEqual([]);
  });

  it('renders an error as its problem document', () => {
    const err = new catalogue.EvidenceUnknown('No evidence record 7');
    expect(err.toProblem()).toEqual({
      type: 'https://packtrust.dev/problems/hub-evidence-unknown',
      title: 'No such evidence record',
      status: 404,
      detail: 'No evidence record 7',
      code: 'HUB_EVIDENCE_UNKNOWN',
    });
  });

  it('keeps internal faults out of the problem documents, with their code for the log', () => {
    const fault = new catalogue.EvidenceSequenceMoved('moved');
    expect(fault).not.toBeInstanceOf(PacktrustError);
    expect(fault).toMatchObject({ code: 'HUB_EVIDENCE_SEQUENCE_MOVED', message: 'moved' });
  });
});
