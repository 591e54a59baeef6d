import { type Logger, pino } from 'pino';

export type { Logger };

/** One logger factory for every service: JSON lines on stdout, level from LOG_LEVEL. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level });
}
