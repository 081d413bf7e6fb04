import express, { type Request, type Response, type Router } from 'express';
import { FaultlineError } from '../lib/errors';
import { parseZipkinJson, zipkinToOtlp } from '../lib/zipkin/convert';
import { readBody } from './body';
import { sendError } from './http-responses';
import { admit, type OtlpHttpOptions } from './otlp-http';

/**
 * Route of Zipkin v2 JSON ingest, `POST /api/v2/spans`, as a Zipkin server offers it:
 * 202 when spans were taken. Zipkin has no partial success, so a request whose spans
 * all have invalid ids gets 400, and one with only some gets 202 with the count of the
 * others in the `X-Faultline-Rejected-Spans` header.
 */
export function zipkinHttpRouter(options: OtlpHttpOptions): Router {
  const router = express.Router();
  router.post('/api/v2/spans', (request: Request, response: Response) => {
    void handleZipkin(options, request, response);
  });
  return router;
}

async function handleZipkin(
  options: OtlpHttpOptions,
  request: Request,
  response: Response,
): Promise<void> {
  let release = () => {};
  try {
    // Some Zipkin senders omit the Content-Type; JSON is the only encoding accepted.
    const typeOk = !request.get('content-type') || request.is('application/json') !== false;
    release = admit(options, request, typeOk);
    const body = await readBody(request, options.limits);
    const outcome = await options.ingest.ingest('zipkin', zipkinToOtlp(parseZipkinJson(body)));
    if (outcome.acceptedSpans === 0 && outcome.rejectedSpans > 0) {
      throw new FaultlineError('FL_BAD_REQUEST', outcome.errorMessage);
    }
    if (outcome.rejectedSpans > 0) {
      response.set('X-Faultline-Rejected-Spans', String(outcome.rejectedSpans));
    }
    response.status(202).end();
  } catch (error) {
    options.ingest.recordRefusal('zipkin', error);
    sendError(response, 'json', error);
  } finally {
    release();
  }
}
