import { NO_FAULTS, type FaultSettings } from '../demo/faults';
import type { ServiceName } from '../demo/messages';
import type { ExtraInstance } from '../demo/supervisor';

/** The culprit a scenario expects at the top of the report. */
export interface ExpectedCulprit {
  service: string;
  /** Set when the culprit is a node that sends no spans, such as a database. */
  dependency?: string;
}

/** A change applied at the start of a phase: faults (to every process or one instance) or routing. */
export interface PhaseStep {
  faults?: Partial<FaultSettings>;
  /** service.instance.id of the one process that gets `faults`; all processes without it. */
  instance?: string;
  route?: { service: ServiceName; instances: string[] };
}

/** One labelled run: a fault-free (or steadily noisy) baseline, then the incident. */
export interface Scenario {
  name: string;
  description: string;
  extraInstances?: ExtraInstance[];
  baseline: PhaseStep[];
  incident: PhaseStep[];
  /** The culprit expected first in the report; null when the report should hold no finding. */
  expected: ExpectedCulprit | null;
  /** Services that a finding must never blame in this run. */
  mustNotBlame?: string[];
}

const faults = (settings: Partial<FaultSettings>): Partial<FaultSettings> => ({
  ...NO_FAULTS,
  ...settings,
});

export const SCENARIOS: Scenario[] = [
  {
    name: 'failing-leaf',
    description: 'payment fails 30% of its charges',
    baseline: [],
    incident: [{ faults: faults({ paymentFailureRate: 0.3 }) }],
    expected: { service: 'payment' },
    mustNotBlame: ['checkout', 'frontend'],
  },
  {
    name: 'failing-database',
    description: "25% of inventory's queries to its PostgreSQL database (no spans) fail",
    baseline: [],
    incident: [{ faults: faults({ databaseFailureRate: 0.25 }) }],
    expected: { service: 'inventory', dependency: 'postgresql/inventory' },
    mustNotBlame: ['checkout', 'frontend'],
  },
  {
    name: 'slow-deep-service',
    description: 'fraud, three hops below frontend, is slow for 30% of checks',
    baseline: [],
    incident: [{ faults: faults({ fraudSlowRate: 0.3 }) }],
    expected: { service: 'fraud' },
    mustNotBlame: ['checkout', 'frontend'],
  },
  {
    name: 'bad-deploy',
    description: 'payment 1.5.0 takes half the traffic and fails 40% of charges',
    extraInstances: [{ service: 'payment', instance: 'payment-2', version: '1.5.0' }],
    baseline: [],
    incident: [
      { faults: faults({ paymentFailureRate: 0.4 }), instance: 'payment-2' },
      { route: { service: 'payment', instances: ['payment-1', 'payment-2'] } },
    ],
    expected: { service: 'payment' },
    mustNotBlame: ['checkout', 'frontend'],
  },
  {
    name: 'faulty-replica',
    description: 'one of two payment replicas fails 50% of charges',
    extraInstances: [{ service: 'payment', instance: 'payment-2' }],
    baseline: [{ route: { service: 'payment', instances: ['payment-1', 'payment-2'] } }],
    incident: [{ faults: faults({ paymentFailureRate: 0.5 }), instance: 'payment-2' }],
    expected: { service: 'payment' },
    mustNotBlame: ['checkout', 'frontend'],
  },
  {
    name: 'noisy-service',
    description: 'fraud fails 10% of checks all the time; payment goes on without them',
    baseline: [{ faults: faults({ fraudFailureRate: 0.1 }) }],
    incident: [{ faults: faults({ fraudFailureRate: 0.1 }) }],
    expected: null,
  },
  {
    name: 'client-4xx',
    description: 'checkout sends 25% of its charges without a currency; payment responds with 400',
    baseline: [],
    incident: [{ faults: faults({ badRequestRate: 0.25 }) }],
    expected: { service: 'checkout' },
    mustNotBlame: ['payment'],
  },
  {
    name: 'no-fault',
    description: 'no fault at all',
    baseline: [],
    incident: [],
    expected: null,
  },
];
