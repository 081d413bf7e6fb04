import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildReport } from '../analyzer/report';
import type { Finding, Report } from '../analyzer/report-types';
import { startApp, type FaultlineApp } from '../cli/app';
import { NO_FAULTS } from '../demo/faults';
import { startDemoServices, type DemoServices } from '../demo/supervisor';
import { driveTraffic } from '../demo/traffic';
import { loadConfig } from '../lib/config';
import { silentLogger } from '../lib/logger';
import { SCENARIOS, type PhaseStep, type Scenario } from './scenarios';

/**
 * The accuracy suite: runs every labelled scenario with real demo services and SDK traffic
 * against one Faultline instance, builds the report of each incident against its baseline,
 * and prints top-1 and top-3 accuracy of the culprit and the false alarms.
 * Options: --phase-seconds N (default 15), --rate N (default 20), --repeat N (default 1),
 * --only name[,name], --out file.json.
 */

interface Options {
  phaseMs: number;
  rate: number;
  repeat: number;
  only: string[];
  out?: string;
}

interface RunResult {
  scenario: string;
  seed: number;
  expected: string;
  top: string[];
  top1: boolean;
  top3: boolean;
  falseAlarms: number;
  analysisMs: number;
  spans: number;
}

function readOptions(argv: string[]): Options {
  const value = (name: string) => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const options = {
    phaseMs: Number(value('--phase-seconds') ?? 15) * 1000,
    rate: Number(value('--rate') ?? 20),
    repeat: Number(value('--repeat') ?? 1),
    only: (value('--only') ?? '').split(',').filter(Boolean),
    out: value('--out'),
  };
  if (!(options.phaseMs >= 5000 && options.phaseMs <= 120_000)) {
    throw new Error(`invalid --phase-seconds ${options.phaseMs / 1000}: expected 5 to 120`);
  }
  if (!(options.repeat >= 1 && options.repeat <= 10)) {
    throw new Error(`invalid --repeat ${options.repeat}: expected 1 to 10`);
  }
  const unknown = options.only.filter((name) => !SCENARIOS.some((item) => item.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown scenario ${unknown.join(', ')}: expected ${SCENARIOS.map((item) => item.name).join(', ')}`,
    );
  }
  return options;
}

function culpritLabel(finding: Finding): string {
  const { culprit } = finding;
  const version = culprit.version ? `@${culprit.version}` : '';
  const instance = culprit.instance ? `#${culprit.instance}` : '';
  const dependency = culprit.dependency ? `→${culprit.dependency}` : '';
  return `${finding.kind}:${culprit.service}${version}${instance}${dependency}`;
}

function matches(scenario: Scenario, finding: Finding | undefined): boolean {
  const expected = scenario.expected;
  if (!expected || !finding) return false;
  if (finding.culprit.service !== expected.service) return false;
  return expected.dependency === undefined || finding.culprit.dependency === expected.dependency;
}

export function scoreRun(scenario: Scenario, report: Report, seed: number): RunResult {
  const findings = report.findings;
  const blamed = (finding: Finding) =>
    (scenario.mustNotBlame ?? []).includes(finding.culprit.service) ||
    (finding.culprit.dependency !== undefined &&
      (scenario.mustNotBlame ?? []).includes(finding.culprit.dependency));
  const falseAlarms = scenario.expected === null ? findings.length : findings.filter(blamed).length;
  return {
    scenario: scenario.name,
    seed,
    expected: scenario.expected
      ? `${scenario.expected.service}${scenario.expected.dependency ? `→${scenario.expected.dependency}` : ''}`
      : '(no finding)',
    top: findings.slice(0, 3).map(culpritLabel),
    top1: scenario.expected === null ? findings.length === 0 : matches(scenario, findings[0]),
    top3:
      scenario.expected === null
        ? findings.length === 0
        : findings.slice(0, 3).some((finding) => matches(scenario, finding)),
    falseAlarms,
    analysisMs: report.durationMs,
    spans: report.spansAnalyzed,
  };
}

async function applySteps(services: DemoServices, steps: PhaseStep[]): Promise<void> {
  for (const step of steps) {
    if (step.faults) {
      await services.setFaults({ ...NO_FAULTS, ...step.faults }, step.instance);
    }
    if (step.route) await services.route(step.route.service, step.route.instances);
  }
}

async function runScenario(
  app: FaultlineApp,
  scenario: Scenario,
  options: Options,
  seed: number,
): Promise<RunResult> {
  const services = await startDemoServices({
    otlpEndpoint: `http://127.0.0.1:${app.collector!.httpPort}`,
    extraInstances: scenario.extraInstances,
    batchDelayMs: 200,
    seed,
  });
  const traffic = { url: `${services.urls.frontend}/checkout`, ratePerSecond: options.rate };
  let baselineStart = 0;
  let windowStart = 0;
  try {
    await applySteps(services, scenario.baseline);
    baselineStart = Date.now();
    await driveTraffic({ ...traffic, phase: 'baseline', durationMs: options.phaseMs });
    await applySteps(services, scenario.incident);
    windowStart = Date.now();
    await driveTraffic({ ...traffic, phase: 'incident', durationMs: options.phaseMs });
  } finally {
    await services.stop();
  }
  await app.collector!.flush();
  const report = await buildReport(app.storage, {
    window: { startMs: windowStart, endMs: Date.now() },
    baseline: { startMs: baselineStart, endMs: windowStart },
  });
  return scoreRun(scenario, report, seed);
}

function printSummary(results: RunResult[]): void {
  const faulty = results.filter((item) => item.expected !== '(no finding)');
  const quiet = results.filter((item) => item.expected === '(no finding)');
  const share = (count: number, total: number) =>
    `${count}/${total} (${((count / Math.max(total, 1)) * 100).toFixed(0)}%)`;
  process.stdout.write(
    '\nscenario | seed | expected | top findings | top-1 | top-3 | false alarms | analysis ms\n',
  );
  for (const item of results) {
    process.stdout.write(
      `${item.scenario} | ${item.seed} | ${item.expected} | ${item.top.join(', ') || '-'} | ${item.top1 ? 'yes' : 'no'} | ${item.top3 ? 'yes' : 'no'} | ${item.falseAlarms} | ${item.analysisMs}\n`,
    );
  }
  process.stdout.write(
    `\ntop-1 accuracy (fault runs): ${share(faulty.filter((item) => item.top1).length, faulty.length)}\n` +
      `top-3 accuracy (fault runs): ${share(faulty.filter((item) => item.top3).length, faulty.length)}\n` +
      `quiet runs with no finding: ${share(quiet.filter((item) => item.top1).length, quiet.length)}\n` +
      `false alarms: ${results.reduce((sum, item) => sum + item.falseAlarms, 0)}\n`,
  );
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faultline-eval-'));
  const config = loadConfig(
    {
      dataDir,
      otlpHttpPort: 0,
      otlpGrpcPort: 0,
      queryPort: 0,
      batchMaxAgeMs: 50,
      logLevel: 'silent',
    },
    {},
  );
  const app = await startApp(config, ['collector'], silentLogger);
  const results: RunResult[] = [];
  try {
    const scenarios = SCENARIOS.filter(
      (item) => options.only.length === 0 || options.only.includes(item.name),
    );
    for (let round = 0; round < options.repeat; round += 1) {
      for (const scenario of scenarios) {
        const result = await runScenario(app, scenario, options, 11 + round * 100);
        process.stdout.write(
          `${scenario.name}: expected ${result.expected}, got ${result.top.join(', ') || 'no finding'}\n`,
        );
        results.push(result);
      }
    }
  } finally {
    await app.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  printSummary(results);
  if (options.out) fs.writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`eval failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
