import path from 'node:path';
import protobuf from 'protobufjs';

/** Folder of the OTLP `.proto` definitions. */
export const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');

const TRACE_SERVICE_PROTO = 'opentelemetry/proto/collector/trace/v1/trace_service.proto';
const RPC_STATUS_PROTO = 'google/rpc/status.proto';

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
  root.loadSync([TRACE_SERVICE_PROTO, RPC_STATUS_PROTO]);
  root.resolveAll();
  return root;
}

const root = loadRoot();

export const ExportTraceServiceRequest = root.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
);
export const ExportTraceServiceResponse = root.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse',
);
export const RpcStatus = root.lookupType('google.rpc.Status');

/** Messages that the fast decoder validates with protobufjs without converting them. */
export const ArrayValueMessage = root.lookupType('opentelemetry.proto.common.v1.ArrayValue');
export const KeyValueListMessage = root.lookupType('opentelemetry.proto.common.v1.KeyValueList');
export const EntityRefMessage = root.lookupType('opentelemetry.proto.common.v1.EntityRef');
