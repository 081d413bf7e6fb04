import { describeValue, type SdkLogger } from './logger';

/** Test of an option value, with the description of valid values for messages. */
type Check<T> = { expected: string; accepts(value: unknown): value is T };

export const nonEmptyString: Check<string> = {
  expected: 'a non-empty string',
  accepts: (value): value is string => typeof value === 'string' && value.trim() !== '',
};

export const ratio: Check<number> = {
  expected: 'a number from 0 to 1',
  accepts: (value): value is number =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1,
};

export const positiveMilliseconds: Check<number> = {
  expected: 'a number of milliseconds greater than 0',
  accepts: (value): value is number =>
    typeof value === 'number' && Number.isFinite(value) && value > 0,
};

export const plainObject: Check<Record<string, unknown>> = {
  expected: 'an object',
  accepts: (value): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value),
};

/**
 * Returns `value` when it passes `check`, and undefined when it is absent or invalid. An invalid
 * value is reported with the option name, the value and `fallback`, the description of what is
 * used instead.
 */
export function checkOption<T>(
  name: string,
  value: unknown,
  check: Check<T>,
  fallback: string,
  logger: SdkLogger,
): T | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (check.accepts(value)) {
    return value;
  }
  logger.warn(
    `invalid option ${name}: expected ${check.expected}, got ${describeValue(value)}. ` +
      `Using ${fallback} instead.`,
  );
  return undefined;
}
