/**
 * The Docker stack, checked statically (no Docker engine here): the compose
 * file's references, the node's image runs as non-root from built
 * JavaScript, the Grafana dashboard asks only for metrics the node really
 * registers, Prometheus scrapes the node, Logstash takes JSON lines, and the
 * example configuration loads and its pipelines validate.
 */
import { allConnectorsRegistry } from '@dataflow/connectors';
import { createInstrumentation, validatePipelineDefinition, type InstrumentationEvent } from '@dataflow/core';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig } from '../config/load-config.js';
import { createNodeMetrics } from '../metrics/node-metrics.js';
import { withConnectionDefaults } from '../node/connection-defaults.js';

const docker = resolve(import.meta.dirname, '../../../../docker');
const read = (path: string) => readFile(resolve(docker, path), 'utf8');

interface Service {
  readonly image?: string;
  readonly build?: unknown;
  readonly container_name?: string;
  readonly depends_on?: Record<string, { condition: string }> | string[];
  readonly healthcheck?: { readonly test?: unknown; readonly disable?: boolean };
  readonly ports?: string[];
  readonly volumes?: string[];
}

describe('the Docker stack', () => {
  it('compose: every service has an image or a build, every dependency exists, databases have health checks, the node can scale', async () => {
    const compose = parse(await read('docker-compose.yml')) as { services: Record<string, Service> };
    const names = Object.keys(compose.services);
    for (const name of ['node', 'dataflow-migrate', 'cassandra', 'kafka', 'postgres', 'redis', 'prometheus', 'grafana', 'logstash', 'elasticsearch', 'kibana', 'kafka-ui']) expect(names).toContain(name);
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.image ?? service.build, name).toBeDefined();
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(names, `${name} depends on ${dep}`).toContain(dep);
    }
    for (const name of ['cassandra', 'kafka', 'postgres', 'redis']) expect(compose.services[name]?.healthcheck?.test, name).toBeDefined();
    const node = compose.services['node'];
    expect(node?.container_name).toBeUndefined();
    expect(node?.ports).toEqual(['127.0.0.1:8080-8082:8080']);
    expect(node?.depends_on).toMatchObject({ 'dataflow-migrate': { condition: 'service_completed_successfully' } });
    expect(node?.volumes).toContain('./config/dataflow.yaml:/etc/dataflow/dataflow.yaml:ro');
  });

  it('the node image builds the workspace, runs the built CLI as the unprivileged node user, and exposes 8080 and 9095', async () => {
    const dockerfile = await read('Dockerfile');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    const runtime = stages[1] ?? '';
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toContain('ENTRYPOINT ["node", "apps/node/dist/cli/dataflow.js"]');
    expect(runtime).toMatch(/^EXPOSE 8080 9095$/m);
    expect(runtime).toContain('npm ci --omit=dev');
    expect(runtime).not.toContain('tsx');
    expect(stages[0]).toContain('nx run @dataflow/node:build');
  });

  it('Grafana: provisioned data source, and every panel queries metrics the node registers', async () => {
    const datasources = parse(await read('grafana/provisioning/datasources/prometheus.yml')) as { datasources: { type: string; uid: string; url: string }[] };
    expect(datasources.datasources).toContainEqual(expect.objectContaining({ type: 'prometheus', uid: 'prometheus' }));
    const dashboard = JSON.parse(await read('grafana/dashboards/dataflow-overview.json')) as {
      uid: string;
      title: string;
      panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[];
    };
    expect(dashboard.uid).toBe('dataflow-overview');
    const metrics = createNodeMetrics({ events: createInstrumentation<InstrumentationEvent>(), recovered: [] }, { processMetrics: false });
    const registered = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    metrics.close();
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid, panel.title).toBe('prometheus');
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        for (const [name] of target.expr.matchAll(/\b(?:pipeline|dataflow)_[a-z_]+\b/g)) used.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
    }
    for (const name of used) expect(registered, `the dashboard queries ${name}`).toContain(name);
    for (const wanted of ['pipeline_records_processed_total', 'pipeline_batch_duration_seconds', 'pipeline_errors_total', 'pipeline_status', 'dataflow_journal_write_duration_seconds', 'dataflow_projection_lag_seconds']) {
      expect(used).toContain(wanted);
    }
  });

  it('Prometheus scrapes the node containers; Logstash takes JSON lines on TCP 5000', async () => {
    const prometheus = parse(await read('prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[] };
    expect(prometheus.scrape_configs.find((c) => c.job_name === 'dataflow')?.dns_sd_configs).toEqual([{ names: ['node'], type: 'A', port: 9095 }]);
    const logstash = await read('logstash/pipeline/logstash.conf');
    expect(logstash).toMatch(/tcp\s*\{\s*port\s*=>\s*5000\s*codec\s*=>\s*json_lines\s*\}/);
  });

  it("the example configuration loads and its pipelines validate against the node's connectors", async () => {
    const config = await loadNodeConfig({ file: resolve(docker, 'config/dataflow.yaml'), env: { DATAFLOW_AUTH_TOKEN: 'x'.repeat(16) } });
    expect(config.journal.type).toBe('cassandra');
    expect(config.logging.logstash).toEqual({ host: 'logstash', port: 5000 });
    // Clustered, so `--scale node=3` shares the pipelines; Redis must never evict its leases.
    expect(config.cluster.enabled).toBe(true);
    expect(config.redis?.url).toBe('redis://redis:6379');
    const compose = parse(await read('docker-compose.yml')) as { services: Record<string, { command?: string[] }> };
    expect(compose.services['redis']?.command?.join(' ')).toContain('--maxmemory-policy noeviction');
    expect(config.pipelines.map((p) => p.id)).toEqual(['prometheus-to-kafka', 'kafka-to-cassandra']);
    for (const pipeline of config.pipelines) {
      const result = validatePipelineDefinition(withConnectionDefaults(pipeline.definition, { kafka: config.kafka, cassandra: config.cassandra }), { connectors: allConnectorsRegistry });
      expect(result.ok ? [] : result.issues, pipeline.id).toEqual([]);
    }
  });
});
