import http from 'node:http';

export interface HttpResponse {
  status: number;
  /** Parsed JSON body, or the raw text when the body is not JSON. */
  body: unknown;
}

export interface HttpRequestOptions {
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  timeoutMs: number;
  agent?: http.Agent;
}

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Sends one request with `http.request`, which the OpenTelemetry HTTP instrumentation patches (it
 * does not patch the fetch of Node 20), so the call gets a client span and a traceparent header.
 * Rejects on a network error, on a timeout and on a body over 1 MiB; any HTTP status resolves.
 */
export function sendRequest(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }

  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'GET', headers, agent: options.agent },
      (response) => {
        readBody(response).then((text) => {
          clearTimeout(timer);
          resolve({ status: response.statusCode ?? 0, body: parseBody(text) });
        }, fail);
      },
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    // The deadline covers the whole exchange, unlike request.setTimeout, which measures idle time.
    const timer = setTimeout(() => {
      request.destroy(new Error(`request to ${url} timed out after ${options.timeoutMs} ms`));
    }, options.timeoutMs);

    request.on('error', fail);
    request.end(payload);
  });
}

function readBody(response: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;

    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        response.destroy(new Error(`response body exceeds ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
  });
}

function parseBody(text: string): unknown {
  if (text === '') {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
