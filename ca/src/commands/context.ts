import { readFileSync } from 'node:fs';
import type { AuditLog } from '../audit-log.ts';
import type { CertificateAuthority } from '../authority.ts';
import type { CaConfig } from '../config.ts';
import { OnboardingInvalid } from '../errors.ts';
import type { Inventory } from '../inventory.ts';

/** What every command of `packtrust-ca` gets from the program (cli.ts). */
export interface CommandContext {
  /** The configuration with the global flags and a command's own flags on top. */
  config(flags?: Record<string, unknown>): CaConfig;
  /** The CA keys' passphrase, from `--passphrase-file` or the environment. */
  passphrase(c: CaConfig): string;
  /** Opens the CA of the configured data directory for `fn`, and closes it after. */
  withCa<T>(fn: (ca: CertificateAuthority, c: CaConfig) => Promise<T>): Promise<T>;
  /** Read-only commands open the inventory and the audit log alone: no CA key, so no passphrase. */
  withRecords(fn: (inventory: Inventory, audit: AuditLog) => void): Promise<void>;
}

/** Commander's accumulator for repeatable options. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new OnboardingInvalid(`Cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}
