import type { IncomingMessage } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { FaultlineError } from '../lib/errors';

export interface BodyLimits {
  /** Bytes accepted as sent, before decompression. */
  maxBodyBytes: number;
  /** Bytes accepted after decompression; inflating stops once this is passed. */
  maxDecompressedBytes: number;
}

type ZstdZlib = typeof zlib & { createZstdDecompress?: () => Transform };

const ENCODINGS = 'gzip, deflate, br, zstd (where the runtime has it) or identity';

/** Returns the stream that inflates a `Content-Encoding`, or undefined for identity. */
export function decompressorFor(encoding: string | undefined): Transform | undefined {
  const name = (encoding ?? '').trim().toLowerCase();
  if (name === '' || name === 'identity') return undefined;
  if (name === 'gzip' || name === 'x-gzip') return zlib.createGunzip();
  if (name === 'deflate') return zlib.createInflate();
  if (name === 'br') return zlib.createBrotliDecompress();
  const zstd = (zlib as ZstdZlib).createZstdDecompress;
  if (name === 'zstd' && zstd) return zstd();
  const detail =
    name === 'zstd' ? `zstd is not available in Node.js ${process.versions.node}` : 'unknown';
  throw new FaultlineError(
    'FL_UNSUPPORTED_ENCODING',
    `unsupported Content-Encoding ${JSON.stringify(encoding)} (${detail}): send ${ENCODINGS}`,
  );
}

function tooLarge(size: string, limit: number): FaultlineError {
  return new FaultlineError(
    'FL_BODY_TOO_LARGE',
    `request body of ${size} bytes exceeds the limit of ${limit} bytes: send smaller batches or raise FAULTLINE_MAX_BODY_BYTES`,
  );
}

function bomb(limit: number): FaultlineError {
  return new FaultlineError(
    'FL_DECOMPRESSED_TOO_LARGE',
    `request body inflates past the limit of ${limit} bytes: send smaller batches or raise FAULTLINE_MAX_DECOMPRESSED_BYTES`,
  );
}

/**
 * Reads a request body, inflating it by its `Content-Encoding`, within both limits.
 * Memory stays within the limits whatever is sent: a declared length over the limit is
 * refused before reading, and inflating is abandoned as soon as its output passes the
 * decompressed limit, so a small gzip bomb never expands in memory.
 */
export function readBody(request: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? NaN);
  if (declared > limits.maxBodyBytes) {
    return Promise.reject(tooLarge(String(declared), limits.maxBodyBytes));
  }
  let inflater: Transform | undefined;
  try {
    inflater = decompressorFor(request.headers['content-encoding']);
  } catch (error) {
    return Promise.reject(error);
  }
  return collect(request, inflater, limits);
}

function collect(
  request: IncomingMessage,
  inflater: Transform | undefined,
  limits: BodyLimits,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let rawBytes = 0;
    let outBytes = 0;
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      request.unpipe();
      inflater?.destroy();
      reject(error);
    };
    request.on('data', (chunk: Buffer) => {
      rawBytes += chunk.length;
      if (rawBytes > limits.maxBodyBytes) fail(tooLarge(`over ${rawBytes}`, limits.maxBodyBytes));
    });
    request.on('error', fail);
    request.on('aborted', () => fail(new FaultlineError('FL_BAD_REQUEST', 'request aborted')));
    const output: Readable = inflater ? request.pipe(inflater) : request;
    output.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > limits.maxDecompressedBytes) fail(bomb(limits.maxDecompressedBytes));
      else if (!settled) chunks.push(chunk);
    });
    output.on('error', (error: Error) =>
      fail(
        new FaultlineError(
          'FL_UNDECODABLE_BODY',
          `could not decompress the request body (${request.headers['content-encoding']}): ${error.message}; send a complete body in the declared Content-Encoding`,
        ),
      ),
    );
    output.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, outBytes));
    });
  });
}
