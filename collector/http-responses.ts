import type { Response } from 'express';
import { FaultlineError, errorMessage } from '../lib/errors';
import { encodeRpcStatus } from '../lib/otlp/decode';

export type Encoding = 'protobuf' | 'json';

export const PROTOBUF_TYPE = 'application/x-protobuf';
export const JSON_TYPE = 'application/json';

/** HTTP status of an ingest failure; anything not a FaultlineError is a server error. */
export function statusOf(error: unknown): number {
  return error instanceof FaultlineError ? error.httpStatus : 500;
}

/**
 * Sends an OTLP/HTTP error: a `google.rpc.Status` in the request's encoding, with
 * `Retry-After` when the sender should come back, and the connection closed when the
 * body was refused unread.
 */
export function sendError(response: Response, encoding: Encoding, error: unknown): void {
  const status = statusOf(error);
  const message = errorMessage(error);
  if (error instanceof FaultlineError && error.retryAfterSeconds !== undefined) {
    response.set('Retry-After', String(error.retryAfterSeconds));
  }
  if (status === 401) response.set('WWW-Authenticate', 'Bearer');
  if (status === 413) response.set('Connection', 'close');
  if (encoding === 'protobuf') {
    response.status(status).type(PROTOBUF_TYPE).send(encodeRpcStatus(status, message));
  } else {
    response.status(status).json({ code: status, message });
  }
}
