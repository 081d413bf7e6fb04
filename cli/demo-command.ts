import { runDemoScenario } from '../demo/run';
import type { FaultlineConfig } from '../lib/config';
import { FaultlineError } from '../lib/errors';
import { createLogger } from '../lib/logger';
import { parseDurationNs } from '../lib/time';

/** Runs the demo and prints its report; Ctrl-C ends the traffic early and still reports. */
export async function runDemoCommand(
  options: Record<string, unknown>,
  config: FaultlineConfig,
): Promise<void> {
  const durationMs = Number(
    parseDurationNs('--duration', String(options.duration ?? '60s')) / 1_000_000n,
  );
  const ratePerSecond = Number(options.rate ?? 20);
  if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0 || ratePerSecond > 200) {
    throw new FaultlineError(
      'FL_INVALID_PARAMETER',
      `invalid --rate ${JSON.stringify(options.rate)}: expected requests a second from 1 to 200`,
    );
  }
  const logger = createLogger(config.logLevel);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const run = await runDemoScenario({
      config,
      logger,
      durationMs,
      ratePerSecond,
      signal: abort.signal,
    });
    const { demo } = run;
    process.stdout.write(
      `\nDemo traffic: ${demo.sent} requests, ${demo.failed} failed. ` +
        `Faults from ${new Date(demo.faultsStartedAtMs).toISOString()}: payment fails ` +
        `${demo.faults.paymentFailureRate * 100}% of charges, stock-api is slow for ` +
        `${demo.faults.stockSlowRate * 100}% of requests.\n\n`,
    );
    process.stdout.write(run.markdown);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
