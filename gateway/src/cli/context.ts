import { InvalidArgumentError } from 'commander';
import type { GatewayConfig, GatewayStoreConfig } from '../config.ts';
import type { HubStore } from '../hub-store.ts';

/** What every command group of `packtrust-gateway` gets from the program (cli.ts). */
export interface CommandContext {
  /** The configuration as `serve` reads it: defaults, file, environment, the global flags and `flags`. */
  config(flags?: Record<string, unknown>): GatewayConfig;
  /** What the commands on the store need (data directory, markets, the keys' passphrase file and lifetime), without the listener's files. */
  storeConfig(): GatewayStoreConfig;
  /** Opens the hub store of the configured data directory for `fn`, and closes it afterwards. */
  withStore(fn: (store: HubStore) => void | Promise<void>): Promise<void>;
}

export const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};
