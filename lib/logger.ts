import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Creates the structured logger that the servers share; each role takes a child of it. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { pid: process.pid } }, destination ?? pino.destination(2));
}

/** A logger that drops everything, for tests and library callers that set none. */
export const silentLogger: Logger = pino({ level: 'silent' });
