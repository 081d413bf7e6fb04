import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Creates the structured logger that the servers share; each role takes a child of it. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { pid: process.pid } }, destination ?? stderrDestination());
}

/**
 * Returns pino's destination for stderr, which drops later lines once a write to stderr
 * fails, such as on a pipe whose reader exited: Ctrl-C on `faultline start | tee log`
 * stops `tee` too. sonic-boom's flush at exit retries such a pipe without end, so the
 * process would never exit.
 */
export function stderrDestination(): pino.DestinationStream {
  const stream = pino.destination({ fd: 2, sync: true });
  stream.on('error', () => {
    stream.write = () => true;
    stream.flushSync = () => {};
  });
  return stream;
}

/** A logger that drops everything, for tests and library callers that set none. */
export const silentLogger: Logger = pino({ level: 'silent' });
