import {
  type BareItem,
  type Item,
  type Parameters,
  parseDictionary,
  parseItem,
  parseList,
  serializeDictionary,
  serializeItem,
  serializeList,
} from 'structured-headers';
import { fieldValues, type HttpMessage } from './message.ts';

export class ComponentError extends Error {}

/**
 * The value of one covered component (RFC 9421 §2): derived components (`@method`,
 * `@target-uri`, `@authority`, `@scheme`, `@request-target`, `@path`, `@query`,
 * `@query-param`, `@status`) and HTTP fields with the `sf`, `key`, `bs` and `req` parameters.
 */
export function componentValue(message: HttpMessage, component: Item): string {
  const [name, params] = component;
  if (typeof name !== 'string') throw new ComponentError('component identifiers are strings');
  const source = params.get('req') === true ? requestOf(message, name) : message;
  if (name.startsWith('@')) return derivedValue(source, name, params);
  if (name !== name.toLowerCase()) throw new ComponentError(`field name "${name}" must be lower-case`);
  if (params.has('tr')) throw new ComponentError('trailer fields are not supported');
  const values = fieldValues(source, name);
  if (values === undefined) throw new ComponentError(`the message has no "${name}" field`);
  if (params.get('bs') === true) {
    if (params.has('sf') || params.has('key')) throw new ComponentError('"bs" cannot be combined with "sf" or "key"');
    return values.map((v) => serializeItem([bytesOf(Buffer.from(v.trim(), 'latin1')), new Map()])).join(', ');
  }
  const joined = values.map((v) => v.trim()).join(', ');
  const key = params.get('key');
  if (key !== undefined) {
    if (typeof key !== 'string') throw new ComponentError('"key" must be a string');
    const member = safe(() => parseDictionary(joined), name).get(key);
    if (member === undefined) throw new ComponentError(`the "${name}" dictionary has no member "${key}"`);
    return serializeDictionary(new Map([['k', member]])).slice(2);
  }
  if (params.get('sf') === true) return reserialize(joined, name);
  return joined;
}

function requestOf(message: HttpMessage, name: string): HttpMessage {
  if (!message.request) throw new ComponentError(`"${name}";req needs the request of this response`);
  return message.request;
}

function derivedValue(message: HttpMessage, name: string, params: Parameters): string {
  if (name === '@status') {
    if (message.status === undefined) throw new ComponentError('@status applies to responses only');
    return String(message.status);
  }
  if (name === '@method') return required(message.method, name);
  const url = new URL(required(message.targetUri, name));
  switch (name) {
    case '@target-uri':
      return required(message.targetUri, name);
    case '@authority':
      return url.host.toLowerCase();
    case '@scheme':
      return url.protocol.slice(0, -1).toLowerCase();
    case '@request-target':
      return `${url.pathname}${url.search}`;
    case '@path':
      return url.pathname || '/';
    case '@query':
      return url.search || '?';
    case '@query-param': {
      const wanted = params.get('name');
      if (typeof wanted !== 'string') throw new ComponentError('@query-param needs a "name" parameter');
      const values = new URLSearchParams(url.search).getAll(wanted);
      if (values.length !== 1) throw new ComponentError(`query parameter "${wanted}" must appear exactly once`);
      return encodeQueryPart(values[0]!);
    }
    default:
      throw new ComponentError(`unknown derived component ${name}`);
  }
}

/** RFC 9421 §2.2.8: percent-encode what `application/x-www-form-urlencoded` would. */
function encodeQueryPart(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function required(value: string | undefined, name: string): string {
  if (value === undefined) throw new ComponentError(`${name} applies to requests only`);
  return value;
}

/** Strict re-serialisation of a structured field: as a dictionary, else a list, else an item. */
function reserialize(value: string, name: string): string {
  for (const attempt of [
    () => serializeDictionary(parseDictionary(value)),
    () => serializeList(parseList(value)),
    () => serializeItem(parseItem(value)),
  ]) {
    try {
      return attempt();
    } catch {}
  }
  throw new ComponentError(`the "${name}" field is not a structured field`);
}

function safe<T>(fn: () => T, name: string): T {
  try {
    return fn();
  } catch {
    throw new ComponentError(`the "${name}" field is not a structured field dictionary`);
  }
}

function bytesOf(buf: Buffer): BareItem {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
