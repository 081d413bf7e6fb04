import express, { type Request, type Response, type Router } from 'express';
import { FaultlineError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { decodeJsonRequest, encodeExportResponse } from '../lib/otlp/decode';
import { readBody, type BodyLimits } from './body';
import { JSON_TYPE, PROTOBUF_TYPE, sendError, statusOf, type Encoding } from './http-responses';
import type { Ingest } from './ingest';

/**
 * Reads the encoding from the Content-Type header alone. Express's `request.is` returns
 * null for a request without a body, which made an empty JSON body a media type error.
 */
function requestEncoding(request: Request): Encoding | undefined {
  const type = (request.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type === PROTOBUF_TYPE) return 'protobuf';
  if (type === JSON_TYPE) return 'json';
  return undefined;
}

export interface OtlpHttpOptions {
  ingest: Ingest;
  limits: BodyLimits;
  logger: Logger;
  /** False once shutdown began, so new requests get 503 while accepted ones finish. */
  isAccepting(): boolean;
}

/**
 * Route of OTLP/HTTP trace ingest, `POST /v1/traces`: protobuf or JSON bodies, gzip,
 * deflate, br or identity, answered in the request's encoding as the OTLP specification
 * asks (200 with partial success, 400, 401, 413, 415, 429 and 503 with Retry-After).
 */
export function otlpHttpRouter(options: OtlpHttpOptions): Router {
  const router = express.Router();
  router.post('/v1/traces', (request: Request, response: Response) => {
    void handleExport(options, request, response);
  });
  return router;
}

/** Checks that need no body: media type, token, shutdown and memory. Returns the release. */
export function admit(
  options: OtlpHttpOptions,
  request: Request,
  encodingKnown: boolean,
): () => void {
  if (!encodingKnown) {
    const type = request.get('content-type') ?? '(none)';
    throw new FaultlineError(
      'FL_UNSUPPORTED_MEDIA_TYPE',
      `unsupported Content-Type ${JSON.stringify(type)}: send ${PROTOBUF_TYPE} or ${JSON_TYPE}`,
    );
  }
  const unauthorized = options.ingest.authorize(request.get('authorization'));
  if (unauthorized) throw unauthorized;
  if (!options.isAccepting()) {
    throw new FaultlineError(
      'FL_SHUTTING_DOWN',
      'collector is shutting down: retry against another instance or later',
      { retryAfterSeconds: 5 },
    );
  }
  const declared = Number(request.get('content-length'));
  const bytes = Number.isFinite(declared) ? declared : options.limits.maxBodyBytes;
  return options.ingest.reserve(Math.min(bytes, options.limits.maxBodyBytes));
}

async function handleExport(
  options: OtlpHttpOptions,
  request: Request,
  response: Response,
): Promise<void> {
  const encoding = requestEncoding(request);
  let release = () => {};
  try {
    release = admit(options, request, encoding !== undefined);
    const body = await readBody(request, options.limits);
    const { ingest } = options;
    const outcome =
      encoding === 'protobuf'
        ? await ingest.ingestProtobuf('otlp_http', body)
        : await ingest.ingest('otlp_http', decodeJsonRequest(body));
    const reply = encodeExportResponse(encoding ?? 'json', outcome);
    if (encoding === 'protobuf') response.status(200).type(PROTOBUF_TYPE).send(reply);
    else response.status(200).json(reply);
  } catch (error) {
    options.ingest.recordRefusal('otlp_http', error);
    if (statusOf(error) >= 500 && !(error instanceof FaultlineError)) {
      options.logger.error({ err: error }, 'export failed');
    }
    sendError(response, encoding ?? 'json', error);
  } finally {
    release();
  }
}
