import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { FaultlineError, errorMessage } from '../errors';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus } from './proto';
import type { OtlpExportRequest } from './request';
import { REPAIRED_TEXTS } from './values';

/**
 * Texts with U+FFFD read from one protobuf body. Invalid UTF-8 bytes decode to U+FFFD,
 * like a U+FFFD sent on purpose, so only the bytes tell them apart.
 */
export interface ReplacementTexts {
  /** Texts rebuilt from invalid UTF-8. */
  repaired: Set<string>;
  /** Texts whose U+FFFD came as valid UTF-8, collected only when the set is given. */
  sent?: Set<string>;
}

type Utf8Buffer = Buffer & { utf8Slice(start: number, end: number): string };

/**
 * Reads a string field of a body read through `createBodyReader`. A length past the end
 * is an error, where protobufjs's own reader would return the shorter text.
 */
export function readText(reader: protobuf.Reader, texts: ReplacementTexts): string {
  const length = reader.uint32();
  const start = reader.pos;
  if (start + length > reader.len) {
    throw new RangeError(
      `string of ${length} bytes at offset ${start} runs past the end of the ${reader.len}-byte body`,
    );
  }
  reader.pos = start + length;
  // toString('utf8') calls utf8Slice after checking its arguments. protobufjs's
  // BufferReader calls utf8Slice directly too.
  const buffer = reader.buf as Utf8Buffer;
  const text = buffer.utf8Slice(start, reader.pos);
  if (text.includes('\uFFFD')) {
    if (isUtf8(buffer.subarray(start, reader.pos))) texts.sent?.add(text);
    else texts.repaired.add(text);
  }
  return text;
}

/** Returns a protobuf reader over the body whose string fields go through `readText`. */
export function createBodyReader(body: Uint8Array, texts: ReplacementTexts): protobuf.Reader {
  // A Buffer gets protobufjs's BufferReader, and native UTF-8 decoding in readText.
  const buffer = Buffer.isBuffer(body)
    ? body
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const reader = protobuf.Reader.create(buffer);
  reader.string = function readString(this: protobuf.Reader): string {
    return readText(this, texts);
  };
  return reader;
}

/** Creates the error for a protobuf body that cannot be decoded, naming the cause. */
export function undecodableProtobuf(body: Uint8Array, error: unknown): FaultlineError {
  return new FaultlineError(
    'FL_UNDECODABLE_BODY',
    `invalid protobuf ExportTraceServiceRequest (${body.length} bytes): ${errorMessage(error)}; send an OTLP protobuf body or use Content-Type application/json for OTLP/JSON`,
  );
}

/** Decodes an OTLP/HTTP protobuf body (`application/x-protobuf`). */
export function decodeProtobufRequest(body: Uint8Array): OtlpExportRequest {
  try {
    const texts: ReplacementTexts = { repaired: new Set() };
    const request = ExportTraceServiceRequest.decode(
      createBodyReader(body, texts),
    ) as unknown as OtlpExportRequest;
    request[REPAIRED_TEXTS] = texts.repaired;
    return request;
  } catch (error) {
    throw undecodableProtobuf(body, error);
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
