/**
 * Decode throughput, spans a second on one core, for OTLP protobuf and JSON bodies as
 * the OpenTelemetry JS exporters send them. Side by side in one run: the
 * `@opentelemetry/otlp-transformer` serializers (the SDK's half of the round trip),
 * Faultline's protobufjs decode plus flatten, the Reader-based fast decoder, and the
 * direct conversion of a protobuf body into the Native block that the collector stores.
 *   npx tsx bench/decode.ts [--seconds 5] [--spans-per-request 500]
 */
import { parseArgs } from 'node:util';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { decodeJsonRequest, decodeProtobufRequest } from '../lib/otlp/decode';
import { decodeSpansFast } from '../lib/otlp/fast-decode';
import { DEFAULT_FLATTEN_LIMITS, flattenExportRequest } from '../lib/otlp/flatten';
import { protobufSpanRows } from '../lib/otlp/protobuf-rows';
import { report, round, timeLoop } from './measure';
import { syntheticTraces, takeSpans } from './synthetic';

function spansPerSecond(label: string, spans: number, bytes: number, step: () => void, ms: number) {
  step();
  const timing = timeLoop(step, ms);
  const perSecondWall = (timing.iterations * spans * 1000) / timing.wallMs;
  const perCoreSecond = (timing.iterations * spans * 1000) / timing.cpuMs;
  report('decode', {
    step: label,
    spansPerRequest: spans,
    bytesPerSpan: round(bytes / spans),
    spansPerSecond: Math.round(perSecondWall),
    spansPerCpuSecond: Math.round(perCoreSecond),
    iterations: timing.iterations,
  });
}

export function runDecodeBenchmark(seconds: number, spansPerRequest: number): void {
  const traces = syntheticTraces({ seed: 1, startMs: Date.now(), traceIntervalMs: 5 });
  const spans = takeSpans(traces, spansPerRequest);
  // Buffers, as the collector receives bodies.
  const protobuf = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
  const json = Buffer.from(JsonTraceSerializer.serializeRequest(spans)!);
  const budgetMs = (seconds * 1000) / 6;
  const oldestNs = BigInt(Date.now() - 7 * 86_400_000) * 1_000_000n;
  const count = spans.length;
  spansPerSecond(
    'otlp-transformer serialize protobuf',
    count,
    protobuf.length,
    () => ProtobufTraceSerializer.serializeRequest(spans),
    budgetMs,
  );
  spansPerSecond(
    'otlp-transformer serialize json',
    count,
    json.length,
    () => JsonTraceSerializer.serializeRequest(spans),
    budgetMs,
  );
  spansPerSecond(
    'faultline protobufjs decode + flatten',
    count,
    protobuf.length,
    () => flattenExportRequest(decodeProtobufRequest(protobuf)),
    budgetMs,
  );
  spansPerSecond(
    'faultline fast decode (Reader)',
    count,
    protobuf.length,
    () => decodeSpansFast(protobuf),
    budgetMs,
  );
  spansPerSecond(
    'faultline protobuf to Native block (direct)',
    count,
    protobuf.length,
    () => {
      if (!protobufSpanRows(protobuf, { limits: DEFAULT_FLATTEN_LIMITS, oldestNs })) {
        throw new Error(
          'protobufSpanRows returned no rows for the exporter body: check what sends it to the record path',
        );
      }
    },
    budgetMs,
  );
  spansPerSecond(
    'faultline json decode + flatten',
    count,
    json.length,
    () => flattenExportRequest(decodeJsonRequest(json)),
    budgetMs,
  );
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      'spans-per-request': { type: 'string', default: '500' },
    },
  });
  runDecodeBenchmark(Number(values.seconds), Number(values['spans-per-request']));
}
