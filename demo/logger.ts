/** Logger of the demo, shaped so that a pino logger fits. */
export interface DemoLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const silentLogger: DemoLogger = { info() {}, warn() {}, error() {} };
