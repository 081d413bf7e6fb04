import type { FaultSettings } from './faults';

export const SERVICE_NAMES = [
  'frontend',
  'checkout',
  'payment',
  'fraud',
  'inventory',
  'stock-api',
] as const;

export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Services that run the Faultline SDK. stock-api stands for a third-party API and sends no spans. */
export const INSTRUMENTED_SERVICES: readonly ServiceName[] = [
  'frontend',
  'checkout',
  'payment',
  'fraud',
  'inventory',
];

/** Base URLs of the services, such as http://127.0.0.1:41234. */
export type ServiceUrls = Partial<Record<ServiceName, string>>;

/** Base URLs of every instance of a service that a caller spreads its calls over, round robin. */
export type ReplicaUrls = Partial<Record<ServiceName, string[]>>;

/** Settings a service process reads at start from the environment variable SERVICE_CONFIG_ENV. */
export interface ServiceProcessConfig {
  service: ServiceName;
  serviceVersion: string;
  environment: string;
  /** Base URL of the OTLP/HTTP receiver. */
  otlpEndpoint: string;
  batchDelayMs: number;
  /** Seed of the fault decisions. Without it the process uses Math.random. */
  seed?: number;
  /** Resource attribute service.instance.id, which tells replicas of one service apart. */
  instance?: string;
}

export const SERVICE_CONFIG_ENV = 'FAULTLINE_DEMO_SERVICE_CONFIG';

/**
 * Messages from the parent to a service process. The process replies to configure and set-faults
 * with an `ack` of the same id, and to shutdown by flushing its spans and exiting.
 */
export type ParentMessage =
  | { type: 'configure'; id: number; downstream: ServiceUrls; replicas?: ReplicaUrls }
  | { type: 'set-faults'; id: number; faults: FaultSettings }
  | { type: 'shutdown' };

export type LogLevel = 'info' | 'warn' | 'error';

/** Messages from a service process to the parent. */
export type ChildMessage =
  | { type: 'ready'; port: number }
  | { type: 'ack'; id: number; error?: string }
  | { type: 'log'; level: LogLevel; message: string; fields: Record<string, unknown> };

export function isChildMessage(value: unknown): value is ChildMessage {
  const type = (value as { type?: unknown } | null)?.type;
  return type === 'ready' || type === 'ack' || type === 'log';
}

export function isParentMessage(value: unknown): value is ParentMessage {
  const type = (value as { type?: unknown } | null)?.type;
  return type === 'configure' || type === 'set-faults' || type === 'shutdown';
}
