/**
 * The console in a real browser: Debian's chromium (`/usr/bin/chromium`,
 * installed by `npm run services -- up`) driven by playwright-core, against
 * a real node on the embedded store serving the admin API and the console.
 * Load the page, see the pipeline's count grow from the live feed, pause it
 * from its button and see the status change; no error in the page. The
 * screenshot is kept in `apps/node/test-artifacts/console.png`.
 */
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { startNodeProjections, type NodeProjections } from '../projections/node-projections.js';
import { createAdminApi } from './admin-api.js';
import { registerConsole } from './console.js';

const CHROMIUM = process.env['DATAFLOW_CHROMIUM'] ?? '/usr/bin/chromium';
const artifacts = resolve(import.meta.dirname, '../../test-artifacts');
const quiet: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sink = new Writable({ write: (_chunk, _encoding, done) => done() });

let dir: string;
let node: DataflowNode;
let projections: NodeProjections;
let app: FastifyInstance;
let browser: Browser;
let base: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm run services -- up installs Debian's chromium (or set DATAFLOW_CHROMIUM)`);
  dir = await mkdtemp(join(tmpdir(), 'dataflow-console-'));
  node = await startNode({ store: { type: 'pglite', dataDir: dir }, logger: quiet, connectors: localConnectorFactory({ stream: sink }), statusReportIntervalMs: 200 });
  const started = await startNodeProjections({ persistence: node.persistence, logger: quiet, migrate: 'auto' });
  if (started === undefined) throw new Error('projections must run on the embedded store');
  projections = started;
  await node.createPipeline({ name: 'sensors', source: { type: 'generator', rate: 300, fields: { id: { kind: 'sequence' } } }, sink: { type: 'console' }, batch: { size: 30, maxWaitMs: 50 } }, { pipelineId: 'sensors' });
  await node.start('sensors');
  app = await createAdminApi({ node, projections, logger: quiet, feedIntervalMs: 500 });
  await registerConsole(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await projections?.close();
  await node?.shutdown();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('the console in chromium', () => {
  it('shows the pipeline counting live, pauses it from its button, and shows the projections', { timeout: 90_000 }, async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    await page.goto(base, { waitUntil: 'domcontentloaded' });
    await page.getByTestId('feed').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });
    const records = page.getByTestId('records-sensors');
    await records.waitFor({ timeout: 15_000 });
    const count = async () => Number((await records.textContent())?.replaceAll(',', '') ?? '0');
    const first = await count();
    await vi.waitFor(async () => expect(await count()).toBeGreaterThan(first + 100), { timeout: 20_000, interval: 200 });
    expect(await count()).toBeGreaterThan(first);
    expect(await page.getByTestId('status-sensors').textContent()).toBe('running');
    expect(await page.getByTestId('resume-sensors').isDisabled()).toBe(true);

    await page.getByTestId('pause-sensors').click();
    await page.getByTestId('status-sensors').filter({ hasText: 'paused' }).waitFor({ timeout: 15_000 });
    expect((await node.getPipeline('sensors'))?.status).toBe('paused');
    expect(await page.getByTestId('resume-sensors').isEnabled()).toBe(true);

    await page.getByTestId('projection-pipeline_status').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('ready').textContent()).toBe('ready');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'console.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });
});
