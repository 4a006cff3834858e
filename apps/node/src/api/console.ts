/**
 * Serves the web console (`apps/node/console/`: one HTML page, one ES
 * module, one stylesheet; no build step) at `/` and `/console/*`. The files
 * are read once at registration, relative to this module, so the same path
 * works from `src/` under tsx and from `dist/` (both are two levels below
 * the package); they ship in the package (`files` has `console`).
 */
import type { FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ASSETS = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
} as const;

/** Where the console's files are. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

/**
 * Adds the console's routes to `app`.
 *
 * @example
 * ```ts
 * const app = await createAdminApi({ node, logger });
 * await registerConsole(app);
 * await app.listen({ port: 8080 });
 * ```
 */
export async function registerConsole(app: FastifyInstance): Promise<void> {
  const page = await readFile(new URL('index.html', `file://${CONSOLE_DIR}`), 'utf8');
  const assets = new Map<string, { body: string; type: string }>();
  for (const [name, type] of Object.entries(ASSETS)) assets.set(name, { body: await readFile(new URL(name, `file://${CONSOLE_DIR}`), 'utf8'), type });
  const security = {
    'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
  };
  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.type('text/html; charset=utf-8').headers({ ...security, 'cache-control': 'no-cache' }).send(page));
  for (const [name, asset] of assets) {
    app.get(`/console/${name}`, { schema: { hide: true } }, (_request, reply) => reply.type(asset.type).headers({ ...security, 'cache-control': 'no-cache' }).send(asset.body));
  }
}
