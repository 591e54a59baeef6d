import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigInvalid } from './errors.ts';

export interface ConfigSources {
  /** A YAML or JSON file; missing keys fall through to the defaults of the schema. */
  file?: string | undefined;
  /** Environment variables named `${envPrefix}SOME_KEY` (nested keys joined with `__`) set `someKey`. */
  envPrefix?: string;
  env?: NodeJS.ProcessEnv;
  /** Highest precedence, typically command-line flags. Undefined values are ignored. */
  overrides?: Record<string, unknown>;
}

/**
 * Loads and validates a service's configuration: schema defaults < file < environment < overrides.
 * Every problem is listed at once in the thrown error, so an operator fixes them in one go.
 */
export function loadConfig<S extends z.ZodType>(schema: S, sources: ConfigSources = {}): z.output<S> {
  const merged: Record<string, unknown> = {};
  if (sources.file) deepMerge(merged, readConfigFile(sources.file));
  if (sources.envPrefix) deepMerge(merged, fromEnv(sources.envPrefix, sources.env ?? process.env));
  if (sources.overrides) deepMerge(merged, stripUndefined(sources.overrides));
  const result = schema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigInvalid(`Invalid configuration:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return result.data;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigInvalid(`Cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  const value: unknown = parseYaml(text);
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigInvalid(`Configuration file ${file} must hold a mapping at the top level`);
  }
  return value as Record<string, unknown>;
}

function fromEnv(prefix: string, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(prefix) || value === undefined) continue;
    const path = name.slice(prefix.length).split('__').map(camelCase);
    let node = out;
    for (const key of path.slice(0, -1)) {
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  }
  return out;
}

function camelCase(snake: string): string {
  return snake.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function stripUndefined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (isPlainObject(current) && isPlainObject(value)) deepMerge(current, value);
    else target[key] = isPlainObject(value) ? deepMerge2(value) : value;
  }
}

function deepMerge2(value: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  deepMerge(copy, value);
  return copy;
}
