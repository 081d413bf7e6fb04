import type { Storage } from '../lib/storage/clickhouse';
import { RANGE_CONDITION, rangeParams, type TimeRange } from '../lib/storage/span-reader';
import { formatDurationNs } from '../lib/time';
import type { DraftFinding } from './draft-finding';
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
}

interface OperationWindow extends OperationKey {
  key: string;
  spans: number;
  outliers: number;
  medianNs: number;
  outlierMedianNs: number;
  exampleTraceIds: string[];
}

const KEY_EXPRESSION =
  "concat(service_name, '\\x1f', name, '\\x1f', toString(kind), '\\x1f', remote_service)";

function operationKey(service: string, name: string, kind: string, remoteService: string): string {
  return [service, name, kind, remoteService].join('\x1f');
}

/**
 * Flags operations whose share of slow spans rose, judged against per-operation
 * baselines of log-durations (median and MAD), then follows the slow traces down to the
 * deepest slow span, which is where the time went.
 */
export async function findLatencyOutliers(
  storage: Storage,
  request: ReportRequest,
): Promise<DraftFinding[]> {
  const baselines = await readBaselines(storage, request);
  if (baselines.size === 0) return [];
  const [windows, before] = await Promise.all([
    readWindow(storage, request.window, baselines),
    readWindow(storage, request.baseline, baselines),
  ]);
  const beforeByKey = new Map(before.map((item) => [item.key, item]));
  const isFlagged = (window: OperationWindow) => flagOperation(window, beforeByKey.get(window.key));
  const flagged = windows.filter(isFlagged);
  if (flagged.length === 0) return [];

  const traceIds = [...new Set(flagged.flatMap((item) => item.exampleTraceIds))].slice(
    0,
    LATENCY_LIMITS.sampledTraces,
  );
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

/**
 * Median and MAD of each operation's log-durations over a range, in one pass: the
 * log-durations of an operation are gathered once and both medians are taken from them.
 */
async function readOperationStats(storage: Storage, range: TimeRange) {
  const result = await storage.client.query({
    query: `SELECT service, name, kind, remote_service, spans, log_median,
  arrayReduce('median', arrayMap(x -> abs(x - log_median), logs)) AS log_mad
FROM (
  SELECT service_name AS service, name, toString(kind) AS kind, remote_service,
    count() AS spans, groupArray(log(greatest(duration_ns, 1))) AS logs,
    arrayReduce('median', logs) AS log_median
  FROM ${storage.database}.spans
  WHERE ${RANGE_CONDITION}
  GROUP BY service_name, name, kind, remote_service
)`,
    query_params: rangeParams(range),
    format: 'JSONEachRow',
  });
  return result.json<{
    service: string;
    name: string;
    kind: string;
    remote_service: string;
    spans: string;
    log_median: number;
    log_mad: number;
  }>();
}

/** Baselines from the baseline range, or from the window for operations new in it. */
async function readBaselines(
  storage: Storage,
  request: ReportRequest,
): Promise<Map<string, OperationBaseline>> {
  const [before, during] = await Promise.all([
    readOperationStats(storage, request.baseline),
    readOperationStats(storage, request.window),
  ]);
  const baselines = new Map<string, OperationBaseline>();
  for (const row of [...during, ...before]) {
    if (Number(row.spans) < LATENCY_LIMITS.minBaselineSpans) continue;
    const key = operationKey(row.service, row.name, row.kind, row.remote_service);
    const mad = Math.max(Number(row.log_mad) * 1.4826, LATENCY_LIMITS.minLogMad);
    const medianNs = Math.exp(Number(row.log_median));
    const logThreshold = Math.max(
      Number(row.log_median) + LATENCY_LIMITS.outlierScore * mad,
      Number(row.log_median) + Math.log(LATENCY_LIMITS.minSlowdown),
      Math.log(medianNs + LATENCY_LIMITS.minExtraMs * 1e6),
    );
    baselines.set(key, {
      key,
      service: row.service,
      name: row.name,
      kind: row.kind,
      remoteService: row.remote_service,
      medianNs: Math.exp(Number(row.log_median)),
      thresholdNs: Math.exp(logThreshold),
      spans: Number(row.spans),
    });
  }
  return baselines;
}

async function readWindow(
  storage: Storage,
  range: TimeRange,
  baselines: Map<string, OperationBaseline>,
): Promise<OperationWindow[]> {
  const keys = [...baselines.keys()];
  const thresholds = keys.map((key) => Math.round(baselines.get(key)!.thresholdNs));
  const result = await storage.client.query({
    query: `SELECT service_name AS service, name, toString(kind) AS kind, remote_service,
  count() AS spans,
  countIf(slow) AS outliers,
  median(duration_ns) AS median_ns,
  medianIf(duration_ns, slow) AS outlier_median_ns,
  arraySlice(arrayReverseSort(x -> x.1, groupArrayIf((duration_ns, leftPad(lower(hex(trace_id)), 32, '0')), slow)), 1, 20) AS examples
FROM (
  SELECT *, duration_ns > transform(${KEY_EXPRESSION}, {keys:Array(String)}, {thresholds:Array(UInt64)}, toUInt64(18446744073709551615)) AS slow
  FROM ${storage.database}.spans
  WHERE ${RANGE_CONDITION}
)
GROUP BY service_name, name, kind, remote_service`,
    query_params: { ...rangeParams(range), keys, thresholds },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{
    service: string;
    name: string;
    kind: string;
    remote_service: string;
    spans: string;
    outliers: string;
    median_ns: number;
    outlier_median_ns: number;
    examples: [string, string][];
  }>();
  return rows.map((row) => ({
    key: operationKey(row.service, row.name, row.kind, row.remote_service),
    service: row.service,
    name: row.name,
    kind: row.kind,
    remoteService: row.remote_service,
    spans: Number(row.spans),
    outliers: Number(row.outliers),
    medianNs: Number(row.median_ns),
    outlierMedianNs: Number(row.outlier_median_ns),
    exampleTraceIds: [...new Set(row.examples.map((example) => example[1]))],
  }));
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
      };
      origin.traceIds.add(tree.traceId);
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
  const culprit: Culprit = { service: window.service, operation: window.name };
  const isCall = window.kind === 'CLIENT' || window.kind === 'PRODUCER';
  if (isCall && window.remoteService) culprit.dependency = window.remoteService;
  const share = window.outliers / window.spans;
  const subject = culprit.dependency
    ? `${window.service}'s call ${JSON.stringify(window.name)} to ${culprit.dependency}`
    : `${window.service} ${JSON.stringify(window.name)}`;
  return {
    kind: 'latency_outlier',
    culprit,
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
    summary: `${subject} was slow in ${window.outliers} of ${window.spans} spans (${(share * 100).toFixed(1)}%): typically ${formatDurationNs(window.outlierMedianNs)} instead of ${formatDurationNs(baseline.medianNs)}; it is the deepest slow span in ${origin.traceIds.size} of ${sampledTraces} sampled slow traces`,
    impactedServices: [...origin.impacted].filter((service) => service !== window.service).sort(),
    evidence: {
      spans: window.spans,
      outliers: window.outliers,
      outlierShare: Math.round(share * 1000) / 1000,
      baselineMedianMs: toMs(baseline.medianNs),
      thresholdMs: toMs(baseline.thresholdNs),
      windowMedianMs: toMs(window.medianNs),
      outlierMedianMs: toMs(window.outlierMedianNs),
      slowTraces: origin.traceIds.size,
      sampledSlowTraces: sampledTraces,
    },
    exampleTraceIds: [...origin.traceIds].slice(0, 5),
  };
}

function toMs(ns: number): number {
  return Math.round(ns / 1e3) / 1e3;
}
