import { defaultServiceName } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { parseKeyValueList, readEnvString, type Environment } from './env';
import { describeValue, type SdkLogger } from './logger';
import type { ResourceAttributeValue } from './options';
import { checkOption, nonEmptyString, plainObject } from './validate';

/**
 * Semantic conventions 1.38 list this attribute as incubating, and the package advises copying
 * incubating names instead of importing its unstable entry point.
 */
export const ATTR_DEPLOYMENT_ENVIRONMENT_NAME = 'deployment.environment.name';

export type ResourceAttributes = Record<string, ResourceAttributeValue>;

interface ResourceOptions {
  serviceName?: unknown;
  serviceVersion?: unknown;
  environment?: unknown;
  resourceAttributes?: unknown;
}

/**
 * Merges resource attributes from, lowest precedence first: OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_SERVICE_NAME, option resourceAttributes, then options serviceName, serviceVersion and
 * environment. service.name is always set, to `unknown_service:<argv0>` when no source names it.
 */
export function resolveResourceAttributes(
  options: ResourceOptions,
  env: Environment,
  logger: SdkLogger,
): ResourceAttributes {
  const attributes: ResourceAttributes = {
    [ATTR_SERVICE_NAME]: defaultServiceName(),
    ...readEnvAttributes(env, logger),
    ...checkAttributes(options.resourceAttributes, logger),
  };

  setFromOption(attributes, 'serviceName', ATTR_SERVICE_NAME, options.serviceName, logger);
  setFromOption(attributes, 'serviceVersion', ATTR_SERVICE_VERSION, options.serviceVersion, logger);
  setFromOption(
    attributes,
    'environment',
    ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
    options.environment,
    logger,
  );
  return attributes;
}

function readEnvAttributes(env: Environment, logger: SdkLogger): ResourceAttributes {
  const listText = readEnvString(env, 'OTEL_RESOURCE_ATTRIBUTES');
  const attributes = listText
    ? parseKeyValueList(listText, 'OTEL_RESOURCE_ATTRIBUTES', logger)
    : {};

  // The specification gives OTEL_SERVICE_NAME precedence over service.name in the list.
  const serviceName = readEnvString(env, 'OTEL_SERVICE_NAME');
  if (serviceName !== undefined) {
    attributes[ATTR_SERVICE_NAME] = serviceName;
  }
  return attributes;
}

function checkAttributes(value: unknown, logger: SdkLogger): ResourceAttributes {
  const input = checkOption(
    'resourceAttributes',
    value,
    plainObject,
    'no extra attributes',
    logger,
  );
  const attributes: ResourceAttributes = {};

  for (const [key, attributeValue] of Object.entries(input ?? {})) {
    if (isAttributeValue(attributeValue)) {
      attributes[key] = attributeValue;
      continue;
    }
    logger.warn(
      `invalid option resourceAttributes: the value of ${JSON.stringify(key)} must be a string, ` +
        `a finite number or a boolean, got ${describeValue(attributeValue)}. Skipping this attribute.`,
    );
  }
  return attributes;
}

function isAttributeValue(value: unknown): value is ResourceAttributeValue {
  return (
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

function setFromOption(
  attributes: ResourceAttributes,
  optionName: string,
  attributeName: string,
  value: unknown,
  logger: SdkLogger,
): void {
  const current = attributes[attributeName];
  const fallback = current === undefined ? `no ${attributeName} attribute` : describeValue(current);
  const checked = checkOption(optionName, value, nonEmptyString, fallback, logger);

  if (checked !== undefined) {
    attributes[attributeName] = checked.trim();
  }
}
