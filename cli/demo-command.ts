import type { FaultlineConfig } from '../lib/config';

export async function runDemoCommand(
  _options: Record<string, unknown>,
  _config: FaultlineConfig,
): Promise<void> {
  throw new Error('demo is not wired yet');
}
