import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { buildProgram } from '../cli/main';
import { loadConfig, SETTINGS } from '../lib/config';

// No container engine runs these files in the tests, so this suite checks that they agree
// with the code: commands, settings, ports and the cluster name.

const DEPLOY_DIR = path.join(__dirname, '..', 'deploy');
const FAULTLINE_IMAGE = 'faultline:local';
const CLUSTER_XML = fs.readFileSync(path.join(DEPLOY_DIR, 'clickhouse', 'cluster.xml'), 'utf8');
const KNOWN_ENV = new Set(Object.values(SETTINGS).map((setting) => setting.env));
const DEFAULT_PORTS = {
  collector: [SETTINGS.otlpHttpPort.defaultValue, SETTINGS.otlpGrpcPort.defaultValue],
  analyzer: [SETTINGS.queryPort.defaultValue],
};

/** A Faultline role as a manifest runs it: the CLI command, its environment and ports. */
interface Role {
  where: string;
  command: string;
  env: Record<string, string>;
  ports: number[];
}

type Yaml = Record<string, any>;

/** Fills `${VAR:?message}` references the way compose would with the variable set. */
function substitute(value: unknown): string {
  return String(value).replace(/\$\{[A-Z_]+(:\?[^}]*)?\}/g, 'secret');
}

function composeRoles(): Role[] {
  const file = fs.readFileSync(path.join(DEPLOY_DIR, 'docker-compose.yml'), 'utf8');
  const compose = parse(file, { merge: true }) as Yaml;
  return Object.entries(compose.services as Record<string, Yaml>)
    .filter(([, service]) => service.image === FAULTLINE_IMAGE)
    .map(([name, service]) => ({
      where: `docker-compose service ${name}`,
      command: service.command[0],
      env: Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([key, value]) => [key, substitute(value)]),
      ),
      ports: (service.ports ?? []).map((mapping: string) => Number(mapping.split(':').at(-1))),
    }));
}

function kubernetesDocuments(): Yaml[] {
  const file = fs.readFileSync(path.join(DEPLOY_DIR, 'kubernetes', 'faultline.yaml'), 'utf8');
  return parseAllDocuments(file, { merge: true }).map((document) => document.toJS() as Yaml);
}

function podContainers(workload: Yaml): Yaml[] {
  return workload.spec.template.spec.containers as Yaml[];
}

function kubernetesRoles(): Role[] {
  return kubernetesDocuments()
    .filter((document) => document.kind === 'Deployment')
    .flatMap((workload) =>
      podContainers(workload)
        .filter((container) => container.image === FAULTLINE_IMAGE)
        .map((container) => ({
          where: `Kubernetes ${workload.metadata.name}/${container.name}`,
          command: container.args[0],
          // A value read from a Secret is replaced by a URL of the right shape.
          env: Object.fromEntries(
            (container.env as Yaml[]).map((variable) => [
              variable.name,
              variable.value ?? 'http://faultline:secret@clickhouse:8123',
            ]),
          ),
          ports: (container.ports as Yaml[]).map((port) => Number(port.containerPort)),
        })),
    );
}

const roles = [...composeRoles(), ...kubernetesRoles()];

describe('deployment manifests', () => {
  it('run both roles in each file', () => {
    expect(roles.map((role) => `${role.where}: ${role.command}`).sort()).toEqual([
      'Kubernetes faultline-analyzer/analyzer: analyzer',
      'Kubernetes faultline-collector/collector: collector',
      'docker-compose service analyzer: analyzer',
      'docker-compose service collector: collector',
    ]);
  });

  it('use commands of the CLI', () => {
    const commands = new Set(buildProgram().commands.map((command) => command.name()));
    for (const role of roles)
      expect([role.where, commands.has(role.command)]).toEqual([role.where, true]);
  });

  it('set only known settings', () => {
    for (const role of roles) {
      const unknown = Object.keys(role.env).filter(
        (name) => name.startsWith('FAULTLINE_') && !KNOWN_ENV.has(name),
      );
      expect([role.where, unknown]).toEqual([role.where, []]);
    }
  });

  it('set valid values', () => {
    for (const role of roles) {
      const config = loadConfig({}, role.env);
      expect([role.where, config.clickhouseUrl !== '']).toEqual([role.where, true]);
    }
  });

  it('name a cluster that ClickHouse defines', () => {
    const kubernetesXml = kubernetesDocuments()
      .filter((document) => document.kind === 'ConfigMap')
      .map((document) => Object.values(document.data ?? {}).join('\n'))
      .join('\n');
    for (const role of roles) {
      const cluster = role.env.FAULTLINE_CLICKHOUSE_CLUSTER;
      const xml = role.where.startsWith('Kubernetes') ? kubernetesXml : CLUSTER_XML;
      expect([role.where, xml.includes(`<${cluster}>`)]).toEqual([role.where, true]);
    }
  });

  it('publish the ports each role listens on', () => {
    for (const role of roles) {
      const expected = DEFAULT_PORTS[role.command as keyof typeof DEFAULT_PORTS];
      expect([role.where, [...role.ports].sort()]).toEqual([role.where, [...expected].sort()]);
    }
  });

  it('select pods that expose each service port', () => {
    const documents = kubernetesDocuments();
    const workloads = documents.filter((document) =>
      ['Deployment', 'StatefulSet'].includes(document.kind),
    );
    for (const service of documents.filter((document) => document.kind === 'Service')) {
      const selector = service.spec.selector as Record<string, string>;
      const pods = workloads.filter((workload) =>
        Object.entries(selector).every(
          ([key, value]) => workload.spec.template.metadata.labels[key] === value,
        ),
      );
      expect([service.metadata.name, pods.length]).toEqual([service.metadata.name, 1]);
      const containerPorts = podContainers(pods[0]).flatMap((container) =>
        (container.ports as Yaml[]).map((port) => Number(port.containerPort)),
      );
      for (const port of service.spec.ports as Yaml[]) {
        const target = Number(port.targetPort ?? port.port);
        expect([service.metadata.name, containerPorts.includes(target)]).toEqual([
          service.metadata.name,
          true,
        ]);
      }
    }
  });
});
