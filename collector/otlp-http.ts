import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { FaultlineError, errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import {
  decodeJsonRequest,
  decodeProtobufRequest,
  encodeExportResponse,
  encodeRpcStatus,
} from '../lib/otlp/decode';
import { flattenExportRequest } from '../lib/otlp/flatten';
import type { OtlpExportRequest } from '../lib/otlp/request';
import type { SpanBatcher } from './batcher';

type Encoding = 'protobuf' | 'json';

const PROTOBUF_TYPE = 'application/x-protobuf';
const JSON_TYPE = 'application/json';

function requestEncoding(request: Request): Encoding | undefined {
  if (request.is(PROTOBUF_TYPE)) return 'protobuf';
  if (request.is(JSON_TYPE)) return 'json';
  return undefined;
}

/** Sends an OTLP/HTTP error: a `google.rpc.Status` in the request's encoding. */
function sendStatus(
  response: Response,
  encoding: Encoding,
  httpStatus: number,
  message: string,
): void {
  if (encoding === 'protobuf') {
    response.status(httpStatus).type(PROTOBUF_TYPE).send(encodeRpcStatus(httpStatus, message));
  } else {
    response.status(httpStatus).json({ code: httpStatus, message });
  }
}

export interface OtlpHttpOptions {
  batcher: SpanBatcher;
  maxBodyBytes: number;
  logger: Logger;
  /** False once shutdown began, so new requests get 503 while accepted ones finish. */
  isAccepting(): boolean;
}

/** Routes of OTLP/HTTP trace ingest: `POST /v1/traces` in protobuf or JSON, gzip or deflate bodies. */
export function otlpHttpRouter(options: OtlpHttpOptions): Router {
  const router = express.Router();
  const rawBody = express.raw({ type: () => true, limit: options.maxBodyBytes, inflate: true });

  router.post('/v1/traces', rawBody, async (request: Request, response: Response) => {
    const encoding = requestEncoding(request);
    if (!encoding) {
      const type = request.get('content-type') ?? '(none)';
      sendStatus(
        response,
        'json',
        415,
        `unsupported Content-Type ${JSON.stringify(type)}: send ${PROTOBUF_TYPE} or ${JSON_TYPE}`,
      );
      return;
    }
    if (!options.isAccepting()) {
      response.set('Retry-After', '5');
      sendStatus(
        response,
        encoding,
        503,
        'collector is shutting down; retry against another instance or later',
      );
      return;
    }

    const body: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    let decoded: OtlpExportRequest;
    try {
      decoded = encoding === 'protobuf' ? decodeProtobufRequest(body) : decodeJsonRequest(body);
    } catch (error) {
      const status = error instanceof FaultlineError ? error.httpStatus : 400;
      sendStatus(response, encoding, status, errorMessage(error));
      return;
    }

    const flattened = flattenExportRequest(decoded);
    try {
      await options.batcher.add(flattened.spans);
    } catch (error) {
      options.logger.warn({ err: error, spans: flattened.spans.length }, 'export not stored');
      response.set('Retry-After', '5');
      sendStatus(
        response,
        encoding,
        503,
        `spans could not be stored: ${errorMessage(error)}; retry later`,
      );
      return;
    }

    const body200 = encodeExportResponse(encoding, {
      rejectedSpans: flattened.rejectedSpans,
      errorMessage: flattened.errorMessage,
    });
    if (encoding === 'protobuf') response.status(200).type(PROTOBUF_TYPE).send(body200);
    else response.status(200).json(body200);
  });

  router.use('/v1/traces', bodyErrorHandler);
  return router;
}

/** Maps body-parser failures (too large, bad encoding, broken gzip) to OTLP error responses. */
function bodyErrorHandler(
  error: unknown,
  request: Request,
  response: Response,
  next: NextFunction,
): void {
  if (!error || typeof error !== 'object' || !('status' in error)) {
    next(error);
    return;
  }
  const encoding = requestEncoding(request) ?? 'json';
  const status = Number((error as { status: number }).status);
  const type = (error as { type?: string }).type;
  let message = errorMessage(error);
  if (type === 'entity.too.large') {
    message = `request body of ${request.get('content-length') ?? 'unknown'} bytes exceeds the limit of ${(error as { limit?: number }).limit} bytes: send smaller batches or raise FAULTLINE_MAX_BODY_BYTES`;
  } else if (type === 'encoding.unsupported') {
    message = `unsupported Content-Encoding ${JSON.stringify(request.get('content-encoding'))}: send gzip, deflate or identity`;
  } else {
    message = `could not read the request body: ${message}`;
  }
  sendStatus(response, encoding, status >= 400 && status < 600 ? status : 400, message);
}
