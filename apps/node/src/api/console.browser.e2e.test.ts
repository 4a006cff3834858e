/**
 * The console in a real browser: Debian's chromium (`/usr/bin/chromium`,
 * installed by `npm run services -- up`) driven by playwright-core, against
 * a real node on the embedded store serving the admin API and the console.
 * Load the page, see the pipeline's count grow from the live feed, pause it
 * from its button and see the status change; no error in the page. Open a
 * pipeline whose sink dead-letters records, see its dead letters with their
 * reasons, fix the cause and replay them from the button. The screenshot is
 * kept in `apps/node/test-artifacts/console.png`.
 */
import { allConnectorsRegistry } from '@dataflow/connectors';
import type { SqlExecutor } from '@dataflow/persistence';
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

const databaseOf = (n: DataflowNode): SqlExecutor => (n.persistence as unknown as { executor: SqlExecutor }).executor;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm run services -- up installs Debian's chromium (or set DATAFLOW_CHROMIUM)`);
  dir = await mkdtemp(join(tmpdir(), 'dataflow-console-'));
  node = await startNode({
    store: { type: 'pglite', dataDir: dir },
    logger: quiet,
    // Postgres sinks and dead-letter tables without connectionString use the node's database, as run-node.ts wires them.
    connectors: localConnectorFactory(() => ({ stream: sink, executor: databaseOf(node) })),
    connectorRegistry: allConnectorsRegistry,
    statusReportIntervalMs: 200,
  });
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

  it("shows a pipeline's dead letters with their reasons and replays them from its button", { timeout: 90_000 }, async () => {
    const db = databaseOf(node);
    await db.query('CREATE TABLE public.console_readings (id integer NOT NULL, v integer NOT NULL)');
    await node.createPipeline(
      {
        name: 'readings',
        source: { type: 'generator', rate: 100, fields: { id: { kind: 'sequence' }, v: { kind: 'pick', values: ['1', 'x'] } } },
        sink: { type: 'postgres', table: 'console_readings', columns: { id: 'id', v: 'v' }, onError: 'dead-letter' },
        batch: { size: 10, maxWaitMs: 20 },
        deadLetter: { type: 'postgres' },
      },
      { pipelineId: 'readings' },
    );
    await node.start('readings');
    const waitForLetters = async () => {
      for (;;) {
        const [row] = await db.query<{ n: number }>("SELECT count(*)::integer AS n FROM public.dead_letters WHERE pipeline_id = 'readings'").catch(() => [{ n: 0 }]);
        if ((row?.n ?? 0) >= 3) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitForLetters();
    // The cause fixed: the column takes any text now, so no new letter comes.
    await node.stop('readings');
    await db.query('ALTER TABLE public.console_readings ALTER COLUMN v TYPE text');
    await node.start('readings');

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    await page.goto(`${base}/#readings`, { waitUntil: 'domcontentloaded' });
    const count = page.getByTestId('dlq-count');
    await vi.waitFor(async () => expect(Number((await count.textContent())?.replaceAll(',', ''))).toBeGreaterThanOrEqual(3), { timeout: 15_000, interval: 200 });
    const first = page.locator('[data-testid^="dead-letter-"]').first();
    expect(await first.textContent()).toMatch(/postgres.*Postgres refused the row: invalid input syntax for type integer: "x"/);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'console-dead-letters.png'), fullPage: true });

    await page.getByTestId('dlq-replay').click();
    await page.getByTestId('dlq-note').filter({ hasText: /^replayed [1-9]/ }).waitFor({ timeout: 15_000 });
    await count.filter({ hasText: /^0$/ }).waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('dlq-replay').isHidden()).toBe(true);
    const [left] = await db.query<{ n: number }>("SELECT count(*)::integer AS n FROM public.console_readings WHERE v = 'x'");
    expect(left?.n).toBeGreaterThanOrEqual(3);
    expect(problems).toEqual([]);
    await page.close();
  });
});
