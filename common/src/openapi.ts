import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { BadRequest, type ErrorClass } from './errors.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface RouteSchema {
  body?: JsonObject;
  querystring?: JsonObject;
  params?: JsonObject;
  response?: Record<string, JsonObject>;
}

/**
 * Reads an OpenAPI 3.1 contract and gives fastify route schemas by operationId, so the routes
 * validate requests and serialise responses from the contract itself, not from a copy.
 * Only 2xx JSON responses are handed to fastify; errors are problem+json from the error handler.
 */
export class OpenApiContract {
  private readonly doc: JsonObject;
  private readonly operations = new Map<string, JsonObject>();

  constructor(path: string) {
    this.doc = parseYaml(readFileSync(path, 'utf8')) as JsonObject;
    const paths = (this.doc.paths ?? {}) as Record<string, Record<string, JsonObject>>;
    for (const item of Object.values(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (method === 'parameters' || typeof op !== 'object') continue;
        if (typeof op.operationId === 'string') this.operations.set(op.operationId, op);
      }
    }
  }

  routeSchema(operationId: string): RouteSchema {
    const op = this.operations.get(operationId);
    if (!op) throw new Error(`operationId ${operationId} is not in the contract`);
    const schema: RouteSchema = {};
    const params = ((op.parameters ?? []) as Json[]).map((p) => this.resolve(p) as JsonObject);
    const query = params.filter((p) => p.in === 'query');
    const path = params.filter((p) => p.in === 'path');
    if (query.length > 0) schema.querystring = this.parameterObject(query);
    if (path.length > 0) schema.params = this.parameterObject(path);
    const body = this.resolve(op.requestBody ?? null) as JsonObject | null;
    const jsonBody = (body?.content as JsonObject | undefined)?.['application/json'] as JsonObject | undefined;
    if (jsonBody?.schema) schema.body = this.deref(jsonBody.schema) as JsonObject;
    const response: Record<string, JsonObject> = {};
    for (const [status, res] of Object.entries((op.responses ?? {}) as JsonObject)) {
      if (!status.startsWith('2')) continue;
      const content = (this.resolve(res) as JsonObject).content as JsonObject | undefined;
      const json = content?.['application/json'] as JsonObject | undefined;
      if (json?.schema) response[status] = this.deref(json.schema) as JsonObject;
    }
    if (Object.keys(response).length > 0) schema.response = response;
    return schema;
  }

  /** The media types the operation's request body may have (its `requestBody.content`). */
  requestMediaTypes(operationId: string): string[] {
    const op = this.operations.get(operationId);
    if (!op) throw new Error(`operationId ${operationId} is not in the contract`);
    const body = this.resolve(op.requestBody ?? null) as JsonObject | null;
    return Object.keys((body?.content as JsonObject | undefined) ?? {});
  }

  /**
   * A parser for a JSON request body that a route reads raw (signed requests are hashed as bytes
   * before they are parsed): validates against the contract's schema, listing every problem in
   * an `invalid` error with `errors: [{path, message}]`.
   */
  jsonBodyParser<T>(operationId: string, invalid: ErrorClass): (body: Buffer) => T {
    const schema = this.routeSchema(operationId).body;
    if (!schema) throw new Error(`operationId ${operationId} has no JSON request body`);
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    return (body) => {
      let value: unknown;
      try {
        value = JSON.parse(body.toString('utf8'));
      } catch {
        throw new BadRequest('The body is not valid JSON');
      }
      if (!validate(value)) {
        const errors = (validate.errors ?? []).map((e) => ({
          path: e.instancePath || '(body)',
          message: e.message ?? 'invalid',
        }));
        throw new invalid(errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
      }
      return value as T;
    };
  }

  private parameterObject(params: JsonObject[]): JsonObject {
    const properties: JsonObject = {};
    const required: string[] = [];
    for (const p of params) {
      properties[p.name as string] = this.deref(p.schema ?? {});
      if (p.required) required.push(p.name as string);
    }
    return { type: 'object', properties, required };
  }

  private resolve(node: Json): Json {
    if (node && typeof node === 'object' && !Array.isArray(node) && typeof node.$ref === 'string') {
      const target = node.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<Json>((acc, key) => (acc as JsonObject)[key] ?? null, this.doc);
      if (target === null) throw new Error(`Unresolved $ref ${node.$ref}`);
      return this.resolve(target);
    }
    return node;
  }

  /** Inlines every $ref (the contracts have no recursive schemas) and drops OpenAPI-only keywords. */
  private deref(node: Json): Json {
    const resolved = this.resolve(node);
    if (Array.isArray(resolved)) return resolved.map((n) => this.deref(n));
    if (resolved && typeof resolved === 'object') {
      const out: JsonObject = {};
      for (const [k, v] of Object.entries(resolved)) {
        if (k === 'example' || k === 'examples' || k === 'externalDocs') continue;
        out[k] = this.deref(v);
      }
      return out;
    }
    return resolved;
  }
}
