import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * What a verifier node accepts from a pharmacy it forwards to the hub (openapi/verifier.yaml
 * `ChangeRequest` → openapi/hub.yaml `PackEvent`): every value the node's contract lets through
 * must pass the hub's, else the hub refuses a change the node already answered (a dead letter at
 * best). Checked on the edges of each limit, with the contracts' own schemas.
 */

type Schema = Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
interface Contract {
  paths: Record<string, { post: { requestBody: { content: Record<string, { schema: Schema }> } } }>;
  components: { schemas: Record<string, Schema> };
}
const contract = (file: string) => parse(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')) as Contract;
const node = contract('verifier.yaml');
const hub = contract('hub.yaml');
const body = (c: Contract, path: string) => c.paths[path]!.post.requestBody.content['application/json']!.schema;
const ajv = new Ajv({ strict: false });
const accepts = (schema: Record<string, unknown>) => {
  const validate = ajv.compile(schema);
  return (value: unknown) => validate(value);
};

/** Values at and around the limits a contract may set on a string. */
const EDGES = [
  '',
  'a',
  '0',
  ' ',
  '\u0000',
  'ü',
  '\u202e',
  'x'.repeat(20),
  'x'.repeat(21),
  '1'.repeat(14),
  'x'.repeat(64),
  'x'.repeat(100),
  'x'.repeat(101),
  '~'.repeat(100),
  '|'.repeat(100),
  '😀'.repeat(50),
  '😀'.repeat(100),
];

describe("the node's limits on what it forwards to the hub", () => {
  it.each(['txId', 'productCode', 'serial'])('let no %s through that the hub refuses', (field) => {
    const nodeTakes = accepts(node.components.schemas.ChangeRequest!.properties[field]!);
    const hubTakes = accepts(hub.components.schemas.PackEvent!.properties[field]!);
    const through = EDGES.filter((v) => nodeTakes(v) && !hubTakes(v));
    expect(through).toEqual([]);
  });

  it('send no more packs in one request than the hub takes in one', () => {
    const nodeMax = body(node, '/v1/packs/{op}/bulk').properties.packs!.maxItems as number;
    expect(nodeMax).toBeLessThanOrEqual(body(hub, '/v1/packs/events').properties.events!.maxItems as number);
  });
});
