import * as grpc from '@grpc/grpc-js';
import { FaultlineError, errorMessage, type ErrorCode } from '../lib/errors';
import { bindError } from '../lib/http-server';
import type { Logger } from '../lib/logger';
import { encodeExportResponse } from '../lib/otlp/decode';
import type { Ingest } from './ingest';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/**
 * The trace service with raw bytes in and out: decoding happens in the handler so that
 * an undecodable message gets INVALID_ARGUMENT with our message, and the same fast
 * decoder and validation serve gRPC and HTTP protobuf.
 */
const TRACE_SERVICE: grpc.ServiceDefinition = {
  Export: {
    path: EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};

/** gRPC status for each refusal, as the OTLP specification pairs them with HTTP statuses. */
const GRPC_STATUS: Partial<Record<ErrorCode, grpc.status>> = {
  FL_UNDECODABLE_BODY: grpc.status.INVALID_ARGUMENT,
  FL_BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  FL_TOO_MANY_SPANS: grpc.status.RESOURCE_EXHAUSTED,
  FL_UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  FL_OVERLOADED: grpc.status.RESOURCE_EXHAUSTED,
  FL_WAL_FULL: grpc.status.UNAVAILABLE,
  FL_WAL_UNAVAILABLE: grpc.status.UNAVAILABLE,
  FL_STORAGE_UNAVAILABLE: grpc.status.UNAVAILABLE,
  FL_SHUTTING_DOWN: grpc.status.UNAVAILABLE,
};

export interface OtlpGrpcServer {
  readonly port: number;
  /** Stops taking calls, lets running ones finish within `deadlineMs`, then cuts them. */
  close(deadlineMs?: number): Promise<void>;
}

export interface OtlpGrpcOptions {
  ingest: Ingest;
  host: string;
  port: number;
  /** Largest message after decompression; grpc-js stops inflating past it. */
  maxMessageBytes: number;
  logger: Logger;
  isAccepting(): boolean;
}

/** Starts OTLP/gRPC trace ingest (`TraceService/Export`, gzip or deflate messages). */
export async function startOtlpGrpc(options: OtlpGrpcOptions): Promise<OtlpGrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
  });
  server.addService(TRACE_SERVICE, {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      handleExport(options, call).then(
        (reply) => callback(null, reply),
        (error: unknown) => callback(toServiceError(error)),
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error
        ? reject(
            bindError(error, options.host, options.port, {
              env: 'FAULTLINE_OTLP_GRPC_PORT',
              flag: '--otlp-grpc-port',
            }),
          )
        : resolve(bound),
    );
  });
  let closing: Promise<void> | undefined;
  return {
    port,
    close(deadlineMs = 5000) {
      closing ??= new Promise<void>((done) => {
        const timer = setTimeout(() => server.forceShutdown(), deadlineMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          done();
        });
      });
      return closing;
    },
  };
}

async function handleExport(
  options: OtlpGrpcOptions,
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
): Promise<Buffer> {
  const { ingest } = options;
  let release = () => {};
  try {
    const header = call.metadata.get('authorization')[0];
    const unauthorized = ingest.authorize(typeof header === 'string' ? header : undefined);
    if (unauthorized) throw unauthorized;
    if (!options.isAccepting()) {
      throw new FaultlineError('FL_SHUTTING_DOWN', 'collector is shutting down: retry later', {
        retryAfterSeconds: 5,
      });
    }
    release = ingest.reserve(call.request.length);
    const outcome = await ingest.ingestProtobuf('otlp_grpc', call.request);
    return encodeExportResponse('protobuf', outcome) as Buffer;
  } catch (error) {
    ingest.recordRefusal('otlp_grpc', error);
    if (!(error instanceof FaultlineError)) options.logger.error({ err: error }, 'export failed');
    throw error;
  } finally {
    release();
  }
}

/**
 * Maps a refusal to a gRPC status; retryable ones (UNAVAILABLE, RESOURCE_EXHAUSTED) also
 * carry the suggested wait in seconds in a `retry-after` trailer.
 */
function toServiceError(error: unknown): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (error instanceof FaultlineError) {
    if (error.retryAfterSeconds !== undefined) {
      metadata.set('retry-after', String(error.retryAfterSeconds));
    }
    return {
      code: GRPC_STATUS[error.code] ?? grpc.status.INVALID_ARGUMENT,
      details: `${error.code}: ${error.message}`,
      metadata,
    };
  }
  return { code: grpc.status.INTERNAL, details: `FL_INTERNAL: ${errorMessage(error)}`, metadata };
}
