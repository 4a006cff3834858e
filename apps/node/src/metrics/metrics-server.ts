/**
 * The node's Prometheus endpoint on plain `node:http`: `GET /metrics` answers
 * the registry's text exposition with its content type, anything else 404
 * (a wrong method on `/metrics` 405). A port that is taken is a typed error
 * naming the port, and `close()` releases the port, keep-alive connections
 * included, so a restarted node can listen on it again at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidMetricValueError, MetricsPortInUseError, MetricsServerError } from './metrics-errors.js';

/** The default port of the metrics endpoint. */
export const DEFAULT_METRICS_PORT = 9095;

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** The registry to expose (the node's own, from `createNodeMetrics`). */
  readonly registry: Registry;
  /** Default 9095; 0 picks a free port (see `port` of the result). */
  readonly port?: number;
  /** Default `0.0.0.0` (Prometheus scrapes from elsewhere); `127.0.0.1` keeps it local. */
  readonly host?: string;
}

/** A listening metrics endpoint. */
export interface MetricsServer {
  /** The port it listens on (the chosen one when `port` was 0). */
  readonly port: number;
  readonly host: string;
  /** `http://host:port/metrics`. */
  readonly url: string;
  /** Stops listening and closes open connections; the port is free when it resolves. Calling it twice is harmless. */
  close(): Promise<void>;
}

/**
 * Serves `registry` on `GET /metrics`.
 *
 * @example
 * ```ts
 * const metrics = createNodeMetrics(node);
 * const server = await startMetricsServer({ registry: metrics.registry, port: 9095, host: '0.0.0.0' });
 * // curl http://127.0.0.1:9095/metrics
 * await server.close();
 * metrics.close();
 * ```
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const port = options.port ?? DEFAULT_METRICS_PORT;
  const host = options.host ?? '0.0.0.0';
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidMetricValueError('port', `must be an integer from 0 to 65535, got ${String(port)}`);
  if (typeof host !== 'string' || host === '') throw new InvalidMetricValueError('host', 'must be a non-empty host name or address');
  const { registry } = options;
  const server = createServer((request, response) => {
    void answer(registry, request, response);
  });
  await listen(server, host, port);
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    host,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      reject(error.code === 'EADDRINUSE' ? new MetricsPortInUseError(host, port, error) : new MetricsServerError(host, port, error));
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

async function answer(registry: Registry, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    reply(response, 404, 'text/plain; charset=utf-8', 'Not found: the metrics are at /metrics\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    reply(response, 405, 'text/plain; charset=utf-8', 'Method not allowed: use GET\n');
    return;
  }
  let body: string;
  try {
    body = await registry.metrics();
  } catch (error) {
    // A collector failed: the scrape fails visibly (Prometheus marks the target down) instead of serving partial data.
    reply(response, 500, 'text/plain; charset=utf-8', `Collecting the metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return;
  }
  reply(response, 200, registry.contentType, body, request.method === 'HEAD');
}

function reply(response: ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  response.statusCode = status;
  response.setHeader('content-type', contentType);
  response.setHeader('content-length', Buffer.byteLength(body));
  response.end(headOnly ? undefined : body);
}
