import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { FaultlineError, errorMessage } from '../errors';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus } from './proto';
import type { OtlpExportRequest } from './request';
import { REPAIRED_TEXTS } from './values';

/**
 * Returns a protobuf reader that notes each string whose bytes are not valid UTF-8. Such
 * bytes decode to U+FFFD, like a U+FFFD sent on purpose, so only the bytes tell them apart.
 */
function noteInvalidUtf8(body: Uint8Array, repaired: Set<string>): protobuf.Reader {
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const reader = protobuf.Reader.create(buffer);
  reader.string = function readString(this: protobuf.Reader): string {
    const length = this.uint32();
    const start = this.pos;
    if (start + length > this.len) {
      throw new RangeError(
        `string of ${length} bytes at offset ${start} runs past the end of the ${this.len}-byte body`,
      );
    }
    this.pos = start + length;
    const text = buffer.toString('utf8', start, this.pos);
    if (text.includes('\uFFFD') && !isUtf8(buffer.subarray(start, this.pos))) repaired.add(text);
    return text;
  };
  return reader;
}

/** Decodes an OTLP/HTTP protobuf body (`application/x-protobuf`). */
export function decodeProtobufRequest(body: Uint8Array): OtlpExportRequest {
  try {
    const repaired = new Set<string>();
    const request = ExportTraceServiceRequest.decode(
      noteInvalidUtf8(body, repaired),
    ) as unknown as OtlpExportRequest;
    request[REPAIRED_TEXTS] = repaired;
    return request;
  } catch (error) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      `invalid protobuf ExportTraceServiceRequest (${body.length} bytes): ${errorMessage(error)}; send an OTLP protobuf body or use Content-Type application/json for OTLP/JSON`,
    );
  }
}

const SNAKE_SEPARATOR = /(?<=[a-z0-9])_([a-z0-9])/g;

/**
 * JSON.parse reviver that renames the snake_case field names of the protobuf definition
 * (`resource_spans`, `start_time_unix_nano`, ...) to the lowerCamelCase that OTLP/JSON
 * uses; when both spellings are present the lowerCamelCase one wins.
 */
function camelCaseKeys(_key: string, value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!key.includes('_')) continue;
    const camel = key.replace(SNAKE_SEPARATOR, (_match, letter: string) => letter.toUpperCase());
    if (camel === key) continue;
    if (!Object.prototype.hasOwnProperty.call(object, camel)) object[camel] = object[key];
    delete object[key];
  }
  return object;
}

/**
 * Decodes an OTLP/HTTP JSON body (`application/json`): lowerCamelCase or snake_case
 * field names, unknown fields ignored. Values keep their JSON types; the flattener
 * accepts hex or base64 ids, int64 as string or number and enums as number or name.
 */
export function decodeJsonRequest(body: Uint8Array): OtlpExportRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'), camelCaseKeys);
  } catch (error) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      `invalid JSON ExportTraceServiceRequest (${body.length} bytes): ${errorMessage(error)}; send OTLP/JSON or use Content-Type application/x-protobuf`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      'invalid JSON ExportTraceServiceRequest: expected an object with a "resourceSpans" array',
    );
  }
  const request = parsed as OtlpExportRequest;
  if (request.resourceSpans !== undefined && !Array.isArray(request.resourceSpans)) {
    throw new FaultlineError(
      'FL_UNDECODABLE_BODY',
      'invalid JSON ExportTraceServiceRequest: "resourceSpans" must be an array',
    );
  }
  // In a body of valid UTF-8, every U+FFFD was sent as such. Otherwise the parser cannot
  // tell which one replaced invalid bytes, so all of them count as repairs.
  if (isUtf8(body)) request[REPAIRED_TEXTS] = new Set();
  return request;
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** Encodes an `ExportTraceServiceResponse`; partial success is set only when spans were rejected. */
export function encodeExportResponse(
  encoding: 'protobuf' | 'json',
  partial: PartialSuccess,
): Buffer | object {
  const hasPartial = partial.rejectedSpans > 0 || partial.errorMessage !== '';
  if (encoding === 'json') {
    return hasPartial
      ? {
          partialSuccess: {
            rejectedSpans: String(partial.rejectedSpans),
            errorMessage: partial.errorMessage,
          },
        }
      : {};
  }
  const message = ExportTraceServiceResponse.create(
    hasPartial
      ? {
          partialSuccess: {
            rejectedSpans: partial.rejectedSpans,
            errorMessage: partial.errorMessage,
          },
        }
      : {},
  );
  return Buffer.from(ExportTraceServiceResponse.encode(message).finish());
}

/** Encodes the `google.rpc.Status` body that OTLP/HTTP returns with an error status. */
export function encodeRpcStatus(code: number, message: string): Buffer {
  return Buffer.from(RpcStatus.encode(RpcStatus.create({ code, message })).finish());
}
