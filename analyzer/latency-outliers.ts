import type { Storage } from '../lib/storage/clickhouse';
import {
  readRangeGroups,
  type LatencyGroup,
  type RangeGroups,
} from '../lib/storage/latency-minutes';
import { RANGE_CONDITION, rangeParams, type TimeRange } from '../lib/storage/span-reader';
import { formatDurationNs } from '../lib/time';
import { FAILING_DEPENDENCY_LIMITS, operationName } from './failing-dependencies';
import type { DraftFinding } from './draft-finding';
import { mergeGroups } from './histogram';
import type { Culprit, ReportRequest } from './report-types';
import { oneProportionZ, twoProportionZ } from './statistics';
import { readTraceTrees } from './trace-sample';
import type { TraceTree, TreeNode } from './tree';

/** Thresholds of the latency-outlier test. */
export const LATENCY_LIMITS = {
  /** Spans of an operation needed in the baseline to use it; otherwise the window is its own baseline. */
  minBaselineSpans: 30,
  /** Spans of an operation needed in the window before it is tested. */
  minWindowSpans: 20,
  /** Robust z score (MAD-scaled distance of the log-duration from its median) of an outlier. */
  outlierScore: 3.5,
  /** An outlier also takes at least this many times the median duration. */
  minSlowdown: 2,
  /**
   * An outlier also takes at least this many milliseconds more than the median: scheduler and
   * timer jitter of a few milliseconds on fast operations is not an incident.
   */
  minExtraMs: 100,
  /** Smallest MAD of the log-duration, so that very steady operations do not flag jitter. */
  minLogMad: 0.1,
  /** Outliers an operation needs before it is flagged. */
  minOutliers: 5,
  /**
   * Share of an operation's spans that must be outliers: a pause of the whole host (garbage
   * collection, CPU contention) slows a few spans of every operation at once, which is not a
   * fault of any one of them.
   */
  minOutlierShare: 0.05,
  /** Share of outliers expected by chance. */
  expectedOutlierShare: 0.01,
  /** z of a one-sided test at p = 0.001. */
  minZ: 3.09,
  /** Outlier traces read to find where the time went. */
  sampledTraces: 200,
  /** Outlier traces sampled from each flagged operation. */
  examplesPerOperation: 20,
};

/** Spans of one operation: a service, a span name and kind, and for calls the node called. */
interface OperationKey {
  service: string;
  name: string;
  kind: string;
  remoteService: string;
}

interface OperationBaseline extends OperationKey {
  key: string;
  medianNs: number;
  thresholdNs: number;
  spans: number;
  /** True for an operation with too few spans before the window, judged by the window's own. */
  fromWindow: boolean;
}

interface OperationWindow extends OperationKey {
  key: string;
  spans: number;
  outliers: number;
  medianNs: number;
  outlierMedianNs: number;
}

const KEY_EXPRESSION =
  "concat(service_name, '\\x1f', name, '\\x1f', toString(kind), '\\x1f', remote_service)";

function operationKey(service: string, name: string, kind: string, remoteService: string): string {
  return [service, name, kind, remoteService].join('\x1f');
}

/**
 * Flags operations whose share of slow spans rose, judged against per-operation
 * baselines of log-durations (median and MAD), then follows the slow traces down to the
 * deepest slow span, which is where the time went. The figures come from the per-minute
 * histograms of `latency_minutes`; only the slow spans of flagged operations are read.
 */
export async function findLatencyOutliers(
  storage: Storage,
  request: ReportRequest,
  groups?: RangeGroups,
): Promise<DraftFinding[]> {
  const { window: windowGroups, baseline: baselineGroups } =
    groups ?? (await readRangeGroups(storage, request));
  const baselines = readBaselines(baselineGroups, windowGroups);
  if (baselines.size === 0) return [];
  const windows = summarizeWindow(windowGroups, baselines);
  const beforeByKey = new Map(
    summarizeWindow(baselineGroups, baselines).map((item) => [item.key, item]),
  );
  const isFlagged = (window: OperationWindow) => flagOperation(window, beforeByKey.get(window.key));
  const flagged = windows.filter(isFlagged);
  if (flagged.length === 0) return [];

  const examples = await readSlowExamples(storage, request.window, flagged, baselines);
  const traceIds = [...new Set(examples)].slice(0, LATENCY_LIMITS.sampledTraces);
  const trees = await readTraceTrees(storage, traceIds);
  const origins = groupSlowOrigins(trees, baselines);

  const findings: DraftFinding[] = [];
  for (const [key, origin] of origins) {
    const window = windows.find((item) => item.key === key);
    const baseline = baselines.get(key);
    if (!window || !baseline || !isFlagged(window)) continue;
    findings.push(toFinding(window, baseline, origin, trees.length));
  }
  return findings.sort((a, b) => Number(b.evidence.slowTraces) - Number(a.evidence.slowTraces));
}

function groupKey(group: LatencyGroup): string {
  return operationKey(group.service, group.name, group.kind, group.remoteService);
}

/** Baselines from the baseline range, or from the window for operations new in it. */
function readBaselines(
  before: LatencyGroup[],
  during: LatencyGroup[],
): Map<string, OperationBaseline> {
  const baselines = new Map<string, OperationBaseline>();
  // The baseline range comes second, so that its figures replace the window's.
  const ranges = [
    { fromWindow: true, groups: during },
    { fromWindow: false, groups: before },
  ];
  for (const { fromWindow, groups } of ranges) {
    for (const [key, { first, spans, histogram }] of mergeGroups(groups, groupKey)) {
      if (spans < LATENCY_LIMITS.minBaselineSpans) continue;
      const logMedian = histogram.logQuantile(0.5);
      const mad = Math.max(histogram.logMad() * 1.4826, LATENCY_LIMITS.minLogMad);
      const medianNs = Math.exp(logMedian);
      const logThreshold = Math.max(
        logMedian + LATENCY_LIMITS.outlierScore * mad,
        logMedian + Math.log(LATENCY_LIMITS.minSlowdown),
        Math.log(medianNs + LATENCY_LIMITS.minExtraMs * 1e6),
      );
      baselines.set(key, {
        key,
        service: first.service,
        name: first.name,
        kind: first.kind,
        remoteService: first.remoteService,
        medianNs,
        thresholdNs: Math.exp(logThreshold),
        spans,
        fromWindow,
      });
    }
  }
  return baselines;
}

/** Spans, outliers and medians of each operation with a baseline over one range. */
function summarizeWindow(
  groups: LatencyGroup[],
  baselines: Map<string, OperationBaseline>,
): OperationWindow[] {
  return [...mergeGroups(groups, groupKey)].flatMap(([key, { first, spans, histogram }]) => {
    const baseline = baselines.get(key);
    if (!baseline) return [];
    return {
      key,
      service: first.service,
      name: first.name,
      kind: first.kind,
      remoteService: first.remoteService,
      spans,
      outliers: Math.round(histogram.countAboveNs(baseline.thresholdNs)),
      medianNs: histogram.quantileNs(0.5),
      outlierMedianNs: histogram.medianAboveNs(baseline.thresholdNs),
    };
  });
}

/**
 * Trace ids of outlier spans of each flagged operation, `examplesPerOperation` each,
 * taken in turns from each ten-minute block by lowest trace id, like the failing traces
 * (see `sampleFailingTraces`).
 */
async function readSlowExamples(
  storage: Storage,
  range: TimeRange,
  flagged: OperationWindow[],
  baselines: Map<string, OperationBaseline>,
): Promise<string[]> {
  const keys = flagged.map((item) => item.key);
  const thresholds = keys.map((key) => Math.round(baselines.get(key)!.thresholdNs));
  const result = await storage.client.query({
    query: `SELECT leftPad(lower(hex(trace_id)), 32, '0') AS trace_id
FROM (
  SELECT operation, trace_id,
    row_number() OVER (PARTITION BY operation, block ORDER BY trace_id) AS turn
  FROM (
    SELECT DISTINCT ${KEY_EXPRESSION} AS operation, toStartOfTenMinutes(start_time) AS block, trace_id
    FROM ${storage.database}.spans
    WHERE ${RANGE_CONDITION}
      AND duration_ns > transform(${KEY_EXPRESSION}, {keys:Array(String)}, {thresholds:Array(UInt64)}, toUInt64(18446744073709551615))
  )
)
ORDER BY turn, trace_id
LIMIT {perOperation:UInt32} BY operation`,
    query_params: {
      ...rangeParams(range),
      keys,
      thresholds,
      perOperation: LATENCY_LIMITS.examplesPerOperation,
    },
    format: 'JSONEachRow',
  });
  return (await result.json<{ trace_id: string }>()).map((row) => row.trace_id);
}

/**
 * Flags an operation whose share of outliers is significantly higher than in the baseline (or,
 * with too few baseline spans, than the share expected by chance), so that an operation with a
 * steady slow tail is not flagged.
 */
function flagOperation(window: OperationWindow, before: OperationWindow | undefined): boolean {
  const limits = LATENCY_LIMITS;
  if (window.spans < limits.minWindowSpans || window.outliers < limits.minOutliers) return false;
  if (window.outliers / window.spans < limits.minOutlierShare) return false;
  if (before && before.spans >= limits.minBaselineSpans) {
    const z = twoProportionZ(window.outliers, window.spans, before.outliers, before.spans);
    return z >= limits.minZ;
  }
  return oneProportionZ(window.outliers, window.spans, limits.expectedOutlierShare) >= limits.minZ;
}

interface SlowOrigin {
  traceIds: Set<string>;
  impacted: Set<string>;
  /** Origin spans by their operation with `http.route` (see operationName). */
  operations: Map<string, number>;
}

function isSlow(node: TreeNode, baselines: Map<string, OperationBaseline>): boolean {
  const { span } = node;
  const baseline = baselines.get(
    operationKey(span.serviceName, span.name, span.kind, span.remoteService),
  );
  return baseline !== undefined && Number(span.durationNs) > baseline.thresholdNs;
}

/** Slow spans with no slow span below them, grouped by operation. */
function groupSlowOrigins(
  trees: TraceTree[],
  baselines: Map<string, OperationBaseline>,
): Map<string, SlowOrigin> {
  const origins = new Map<string, SlowOrigin>();
  for (const tree of trees) {
    const slow = new Set(tree.nodes.filter((node) => isSlow(node, baselines)));
    const slowBelow = new Map<TreeNode, boolean>();
    for (let index = tree.nodes.length - 1; index >= 0; index -= 1) {
      const node = tree.nodes[index];
      slowBelow.set(
        node,
        node.children.some((child) => slow.has(child) || slowBelow.get(child) === true),
      );
    }
    const impacted = new Set([...slow].map((node) => node.span.serviceName));
    for (const node of slow) {
      if (slowBelow.get(node)) continue;
      const { span } = node;
      const key = operationKey(span.serviceName, span.name, span.kind, span.remoteService);
      const origin = origins.get(key) ?? {
        traceIds: new Set<string>(),
        impacted: new Set<string>(),
        operations: new Map<string, number>(),
      };
      origin.traceIds.add(tree.traceId);
      const operation = operationName(span);
      origin.operations.set(operation, (origin.operations.get(operation) ?? 0) + 1);
      for (const service of impacted) origin.impacted.add(service);
      origins.set(key, origin);
    }
  }
  return origins;
}

function toFinding(
  window: OperationWindow,
  baseline: OperationBaseline,
  origin: SlowOrigin,
  sampledTraces: number,
): DraftFinding {
  const operation = dominantOperation(origin.operations) ?? window.name;
  const culprit: Culprit = { service: window.service, operation };
  const isCall = window.kind === 'CLIENT' || window.kind === 'PRODUCER';
  if (isCall && window.remoteService) culprit.dependency = window.remoteService;
  const share = window.outliers / window.spans;
  const subject = culprit.dependency
    ? `${window.service}'s call ${JSON.stringify(operation)} to ${culprit.dependency}`
    : `${window.service} ${JSON.stringify(operation)}`;
  const typical = baseline.fromWindow
    ? `${formatDurationNs(window.outlierMedianNs)} against a median of ${formatDurationNs(baseline.medianNs)} in the window (too few spans before it to compare with)`
    : `${formatDurationNs(window.outlierMedianNs)} instead of ${formatDurationNs(baseline.medianNs)}`;
  return {
    kind: 'latency_outlier',
    culprit,
    // The route is left out, so that a finding keeps its fingerprint from window to window.
    fingerprintOperation: window.name,
    errorRate: share,
    confidence: origin.traceIds.size / Math.max(sampledTraces, 1),
    selector: {
      condition:
        'service_name = {sel_service:String} AND name = {sel_name:String} AND toString(kind) = {sel_kind:String} AND remote_service = {sel_remote:String} AND duration_ns > {sel_threshold:UInt64}',
      params: {
        sel_service: window.service,
        sel_name: window.name,
        sel_kind: window.kind,
        sel_remote: window.remoteService,
        sel_threshold: Math.round(baseline.thresholdNs),
      },
    },
    summary: `${subject} was slow in ${window.outliers} of ${window.spans} spans (${(share * 100).toFixed(1)}%): typically ${typical}; it is the deepest slow span in ${origin.traceIds.size} of ${sampledTraces} sampled slow traces`,
    impactedServices: [...origin.impacted].filter((service) => service !== window.service).sort(),
    evidence: {
      spans: window.spans,
      outliers: window.outliers,
      outlierShare: Math.round(share * 1000) / 1000,
      // The window's median is not a baseline, so the field is "none", as for an error rate.
      baselineMedianMs: baseline.fromWindow ? 'none' : toMs(baseline.medianNs),
      thresholdMs: toMs(baseline.thresholdNs),
      windowMedianMs: toMs(window.medianNs),
      outlierMedianMs: toMs(window.outlierMedianNs),
      slowTraces: origin.traceIds.size,
      sampledSlowTraces: sampledTraces,
    },
    exampleTraceIds: [...origin.traceIds].slice(0, 5),
  };
}

/**
 * Returns the operation, with its route, of most of an operation's slow origin spans.
 * Express names every handler span "request handler", so only `http.route` identifies the
 * slow endpoint. Returns undefined when no operation has that share.
 */
function dominantOperation(operations: Map<string, number>): string | undefined {
  const total = [...operations.values()].reduce((sum, count) => sum + count, 0);
  for (const [operation, count] of operations) {
    if (count >= total * FAILING_DEPENDENCY_LIMITS.concentratedShare) return operation;
  }
  return undefined;
}

function toMs(ns: number): number {
  return Math.round(ns / 1e3) / 1e3;
}
