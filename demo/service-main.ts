// This import must stay first: it starts tracing before `http` and `express` are loaded.
import { config, peers, tracing } from './service-tracing';

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { createRandom, findFaultProblems, NO_FAULTS } from './faults';
import { isParentMessage, type ChildMessage, type LogLevel, type ParentMessage } from './messages';
import { createRequestListener, type ServiceContext } from './services';

/**
 * Entry point of one demo service process, started by the supervisor with an IPC channel. It
 * listens on 127.0.0.1 at a free port, reports the port, then follows the parent's messages. It
 * flushes its spans and exits on a shutdown message, on SIGTERM or SIGINT, and when the parent
 * goes away.
 */

/** Milliseconds that open requests get to finish at shutdown before their connections close. */
const DRAIN_TIMEOUT_MS = 2000;

const context: ServiceContext = {
  downstream: {},
  replicas: {},
  faults: { ...NO_FAULTS },
  random: createRandom(config.seed),
  tracer: trace.getTracer(`demo-${config.service}`, config.serviceVersion),
  log,
};
const server = http.createServer(createRequestListener(config.service, context));
let stopping: Promise<void> | undefined;

function send(message: ChildMessage): void {
  if (process.connected && process.send) {
    process.send(message);
  }
}

function log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  if (process.connected) {
    send({ type: 'log', level, message, fields });
    return;
  }
  console.error(JSON.stringify({ level, service: config.service, message, ...fields }));
}

function handleMessage(message: ParentMessage): void {
  switch (message.type) {
    case 'configure':
      context.downstream = message.downstream;
      context.replicas = message.replicas ?? {};
      peers.update(message.downstream, context.replicas);
      send({ type: 'ack', id: message.id });
      return;
    case 'set-faults': {
      const problems = findFaultProblems(message.faults);
      if (problems.length > 0) {
        send({ type: 'ack', id: message.id, error: problems.join('; ') });
        return;
      }
      context.faults = { ...message.faults };
      log('info', 'faults changed', { faults: context.faults });
      send({ type: 'ack', id: message.id });
      return;
    }
    case 'shutdown':
      exitAfterStop('shutdown message');
      return;
  }
}

function stop(reason: string): Promise<void> {
  stopping ??= (async () => {
    log('info', 'service stopping', { reason });
    await closeServer();
    await tracing?.shutdown();
  })();
  return stopping;
}

function closeServer(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), DRAIN_TIMEOUT_MS);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function exitAfterStop(reason: string): void {
  void stop(reason).finally(() => process.exit(0));
}

process.on('message', (message) => {
  if (isParentMessage(message)) {
    handleMessage(message);
  }
});
process.on('disconnect', () => exitAfterStop('parent disconnected'));
process.on('SIGTERM', () => exitAfterStop('SIGTERM'));
process.on('SIGINT', () => exitAfterStop('SIGINT'));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  log('info', 'service listening', { port, tracesUrl: tracing?.tracesUrl ?? 'none' });
  send({ type: 'ready', port });
});
