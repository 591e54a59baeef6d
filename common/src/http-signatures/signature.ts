import type { KeyObject } from 'node:crypto';
import {
  type Dictionary,
  type InnerList,
  type Item,
  type Parameters,
  parseDictionary,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
} from 'structured-headers';
import { type SignatureAlgorithm, signBase, verifyBase } from './algorithms.ts';
import { ComponentError, componentValue } from './components.ts';
import { fieldValues, type HttpMessage } from './message.ts';

export class SignatureError extends Error {}

/** Signature parameters (RFC 9421 §2.3), serialised in the order given. */
export type SignatureParameters = Record<string, string | number>;

/** A covered component: a name, or a name with parameters (`['@query-param', { name: 'Pet' }]`). */
export type ComponentSpec = string | [string, Record<string, string | boolean>];

function toItem(spec: ComponentSpec): Item {
  if (typeof spec === 'string') return [spec, new Map()];
  return [spec[0], new Map(Object.entries(spec[1]))];
}

/**
 * The signature base of RFC 9421 §2.5: one line per covered component, then
 * `"@signature-params"`. Returns the base and the serialised signature parameters.
 */
export function signatureBase(
  message: HttpMessage,
  components: Item[],
  params: Parameters,
): { base: string; signatureParams: string } {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const component of components) {
    const id = serializeItem(component);
    if (seen.has(id)) throw new SignatureError(`component ${id} is covered twice`);
    seen.add(id);
    let value: string;
    try {
      value = componentValue(message, component);
    } catch (err) {
      if (err instanceof ComponentError) throw new SignatureError(err.message);
      throw err;
    }
    if (/[\r\n]/.test(value)) throw new SignatureError(`component ${id} contains a line break`);
    lines.push(`${id}: ${value}`);
  }
  const signatureParams = serializeInnerList([components, params]);
  lines.push(`"@signature-params": ${signatureParams}`);
  return { base: lines.join('\n'), signatureParams };
}

export interface SignOptions {
  label: string;
  components: ComponentSpec[];
  params: SignatureParameters;
  key: KeyObject;
  alg: SignatureAlgorithm;
}

export interface MessageSignature {
  /** `Signature-Input` member, e.g. `sig1=("@method" …);created=…`. */
  signatureInput: string;
  /** `Signature` member, e.g. `sig1=:…:`. */
  signature: string;
  base: string;
}

export function signMessage(message: HttpMessage, options: SignOptions): MessageSignature {
  const components = options.components.map(toItem);
  const params: Parameters = new Map(Object.entries(options.params));
  const { base } = signatureBase(message, components, params);
  const value = signBase(options.alg, Buffer.from(base), options.key);
  const inputDict: Dictionary = new Map([[options.label, [components, params] as InnerList]]);
  const sigDict: Dictionary = new Map([[options.label, [toArrayBuffer(value), new Map()]]]);
  return { signatureInput: serializeDictionary(inputDict), signature: serializeDictionary(sigDict), base };
}

export interface ParsedSignature {
  label: string;
  components: Item[];
  params: Parameters;
  signature: Buffer;
}

/** Reads the signatures of a message from its `Signature-Input` and `Signature` fields. */
export function parseSignatures(message: HttpMessage): ParsedSignature[] {
  const inputs = dictionaryField(message, 'signature-input');
  const signatures = dictionaryField(message, 'signature');
  const out: ParsedSignature[] = [];
  for (const [label, input] of inputs) {
    if (!Array.isArray(input[0])) throw new SignatureError(`Signature-Input "${label}" is not an inner list`);
    const sig = signatures.get(label);
    if (!sig) throw new SignatureError(`Signature-Input "${label}" has no matching Signature`);
    if (!(sig[0] instanceof ArrayBuffer)) throw new SignatureError(`Signature "${label}" is not a byte sequence`);
    const components = input[0] as Item[];
    for (const c of components) {
      if (typeof c[0] !== 'string') throw new SignatureError(`Signature-Input "${label}" lists a non-string component`);
    }
    out.push({ label, components, params: input[1], signature: Buffer.from(sig[0]) });
  }
  return out;
}

/** Recomputes the base of a parsed signature over `message` and checks it with `key`. */
export function verifySignature(
  message: HttpMessage,
  parsed: ParsedSignature,
  key: KeyObject,
  alg: SignatureAlgorithm,
): string {
  const { base } = signatureBase(message, parsed.components, parsed.params);
  if (!verifyBase(alg, Buffer.from(base), key, parsed.signature)) {
    throw new SignatureError(`signature "${parsed.label}" does not verify`);
  }
  return base;
}

function dictionaryField(message: HttpMessage, name: string): Dictionary {
  const values = fieldValues(message, name);
  if (!values) throw new SignatureError(`the ${name} field is missing`);
  try {
    return parseDictionary(values.join(', '));
  } catch {
    throw new SignatureError(`the ${name} field is not a valid structured dictionary`);
  }
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
