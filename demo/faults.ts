/**
 * Faults that the demo injects at run time. The parent process sends them to the service
 * processes, which read them on every request; each field acts in one service.
 */
export interface FaultSettings {
  /** Share of POST /charge requests that fail with HTTP 500, from 0 to 1. */
  paymentFailureRate: number;
  /** Share of GET /stock requests that stock-api delays, from 0 to 1. */
  stockSlowRate: number;
  /** Minimum delay of a slow stock-api response, in milliseconds. */
  stockSlowMinMs: number;
  /** Maximum delay of a slow stock-api response, in milliseconds. */
  stockSlowMaxMs: number;
  /** Share of inventory's queries to its database (which sends no spans) that fail. */
  databaseFailureRate?: number;
  /** Share of fraud checks that fraud delays by 800 to 1500 ms. */
  fraudSlowRate?: number;
  /** Share of fraud checks that fail with HTTP 500; payment then charges without the check. */
  fraudFailureRate?: number;
  /** Share of checkout's charges sent without a currency, which payment rejects with HTTP 400. */
  badRequestRate?: number;
}

export const NO_FAULTS: Readonly<FaultSettings> = Object.freeze({
  paymentFailureRate: 0,
  stockSlowRate: 0,
  stockSlowMinMs: 800,
  stockSlowMaxMs: 1500,
});

/** Faults of the demo's incident phase. */
export const INCIDENT_FAULTS: Readonly<FaultSettings> = Object.freeze({
  paymentFailureRate: 0.3,
  stockSlowRate: 0.25,
  stockSlowMinMs: 800,
  stockSlowMaxMs: 1500,
});

/** Delays of healthy responses, in milliseconds. */
export const NORMAL_LATENCY_MS = Object.freeze({
  payment: { min: 10, max: 40 },
  stock: { min: 5, max: 20 },
  database: { min: 2, max: 8 },
  fraud: { min: 5, max: 15 },
});

/** Delay of a slow fraud check, in milliseconds. */
export const FRAUD_SLOW_MS = Object.freeze({ min: 800, max: 1500 });

/** Error message of a failed query to inventory's database; the numbers vary by query. */
export function databaseFailureMessage(random: Random): string {
  const connection = Math.floor(random() * 90) + 10;
  return `connection ${connection} to 10.0.3.7:5432 reset by peer after ${Math.floor(random() * 900) + 100}ms`;
}

/** True with probability `rate` (0 when the rate is not set). */
export function chance(random: Random, rate: number | undefined): boolean {
  return random() < (rate ?? 0);
}

/** Error message that payment records as the exception of a failed charge. */
export const PAYMENT_FAILURE_MESSAGE = 'card processor declined: timeout after 2000ms';

const RATE_FIELDS = [
  'paymentFailureRate',
  'stockSlowRate',
  'databaseFailureRate',
  'fraudSlowRate',
  'fraudFailureRate',
  'badRequestRate',
] as const;
const DELAY_FIELDS = ['stockSlowMinMs', 'stockSlowMaxMs'] as const;

/** Returns the problems of a fault setting, one sentence each. An empty list means valid. */
export function findFaultProblems(faults: FaultSettings): string[] {
  const problems: string[] = [];

  for (const field of RATE_FIELDS) {
    const value = faults[field] ?? 0;
    if (!(Number.isFinite(value) && value >= 0 && value <= 1)) {
      problems.push(`${field} must be a number from 0 to 1, got ${value}`);
    }
  }
  for (const field of DELAY_FIELDS) {
    const value = faults[field];
    if (!(Number.isFinite(value) && value >= 0)) {
      problems.push(`${field} must be a number of milliseconds from 0 up, got ${value}`);
    }
  }
  if (faults.stockSlowMinMs > faults.stockSlowMaxMs) {
    problems.push(
      `stockSlowMinMs (${faults.stockSlowMinMs}) must not exceed stockSlowMaxMs ` +
        `(${faults.stockSlowMaxMs})`,
    );
  }
  return problems;
}

export type Random = () => number;

/**
 * Creates a generator of numbers in [0, 1). With a seed it is the mulberry32 generator, so a run
 * repeats its fault decisions. Without one it is Math.random.
 */
export function createRandom(seed?: number): Random {
  if (seed === undefined) {
    return Math.random;
  }
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBetween(random: Random, min: number, max: number): number {
  return min + random() * (max - min);
}

export function shouldFailPayment(faults: FaultSettings, random: Random): boolean {
  return random() < faults.paymentFailureRate;
}

/** Picks the delay of one stock-api response, in milliseconds. */
export function pickStockDelayMs(faults: FaultSettings, random: Random): number {
  if (random() < faults.stockSlowRate) {
    return randomBetween(random, faults.stockSlowMinMs, faults.stockSlowMaxMs);
  }
  return randomBetween(random, NORMAL_LATENCY_MS.stock.min, NORMAL_LATENCY_MS.stock.max);
}
