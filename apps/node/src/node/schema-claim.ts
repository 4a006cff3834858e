/**
 * One node per journal schema outside a cluster. Two nodes started on the
 * same Postgres schema (a second process by mistake, a deploy that overlaps
 * the old one) used to both run: the first pipeline or coordinator write of
 * one conflicted with the other's, and both nodes stopped ("lost the
 * single-writer race"), the healthy one included. Now a node holds a session
 * advisory lock for its schema while it runs, on a connection of its own
 * named after it (`application_name`), and a second node is refused at start
 * with the first one's name, host and start time. The lock goes with its
 * connection, so a node killed with SIGKILL leaves nothing stale behind.
 *
 * If that connection breaks (a Postgres outage, a restart; a heartbeat every
 * 5 s notices), the lock is gone with it: the claim reconnects every second
 * and takes it again. The session asks the server for TCP keepalives of
 * 10 s + 3 × 5 s, so a host that vanishes without closing its connection
 * frees the schema within about 25 s. Should
 * another node have taken it meanwhile, this node must stop (`lost`), rather
 * than fight over the journal. Nodes of a cluster share a schema by design
 * and coordinate through their leases instead: they take no claim.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { NodeConfigError, NodeFailedError } from './node-errors.js';
import type { NodeLogger } from './node-logger.js';
import { redacted } from './node-persistence.js';

/** The first key of the advisory lock (`pg_try_advisory_lock(int4, int4)`); the second is `hashtext` of the schema. */
const CLAIM_KEY = 0x44465343; // 'DFSC'

export interface SchemaClaimOptions {
  readonly url: string;
  readonly schema: string;
  readonly nodeId: string;
  readonly logger: NodeLogger;
  /** Between attempts to take the claim back after its connection broke (default 1 000 ms). */
  readonly retryMs?: number;
  /** How often the idle claim connection is checked (default 5 000 ms; each check also times out after this long). */
  readonly heartbeatMs?: number;
}

/** A claim held on a schema. */
export interface SchemaClaim {
  /** Resolves when the claim is lost to another node (this node must stop); never resolves otherwise. */
  readonly lost: Promise<NodeFailedError>;
  /** Lets the claim go (after the node's last journal write). */
  release(): Promise<void>;
}

/**
 * Takes the claim on `schema`, or throws a `NodeConfigError` naming the node that holds it.
 *
 * @example
 * ```ts
 * const claim = await claimJournalSchema({ url, schema: 'dataflow', nodeId: 'node-a', logger });
 * // ... run the node; stop it when claim.lost resolves ...
 * await claim.release();
 * ```
 */
export async function claimJournalSchema(options: SchemaClaimOptions): Promise<SchemaClaim> {
  const { schema, logger } = options;
  const applicationName = `dataflow node ${options.nodeId} (pid ${process.pid} on ${hostname()})`.slice(0, 63);
  // The heartbeat's period is also how long any query of the claim may take.
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  let client: pg.Client;
  try {
    client = await connect(options.url, applicationName, heartbeatMs);
  } catch (error) {
    // As the journal would say it: the server is the problem, not the claim (the URL's password stays out).
    throw new NodeConfigError('DATAFLOW_POSTGRES_URL', `cannot use ${shown(options.url)} (${messageOf(error)})`, { retriable: true, cause: error });
  }
  let taken: boolean;
  try {
    taken = await tryLock(client, schema);
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new NodeConfigError('postgres.schema', `cannot take the claim on journal schema ${schema} (${messageOf(error)})`, { retriable: true, cause: error });
  }
  if (!taken) {
    const holder = await holderOf(client, schema).catch(() => undefined);
    await client.end().catch(() => undefined);
    throw new NodeConfigError(
      'postgres.schema',
      `another node runs on journal schema ${schema}${holder === undefined ? '' : `: ${holder}`}. Two nodes on one schema outside a cluster would stop each other at their first ` +
        'conflicting write: give each node its own schema, or run them as a cluster (cluster.enabled)',
    );
  }

  let released = false;
  let resolveLost: (error: NodeFailedError) => void = () => undefined;
  const lost = new Promise<NodeFailedError>((resolve) => (resolveLost = resolve));
  const retryMs = options.retryMs ?? 1_000;

  const reclaim = async (cause: string): Promise<void> => {
    logger.warn(`the claim on journal schema ${schema} lost its connection (${cause}); taking it again`);
    for (let attempt = 1; !released; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      if (released) return;
      let next: pg.Client | undefined;
      try {
        next = await connect(options.url, applicationName, heartbeatMs);
        if (await tryLock(next, schema)) {
          client = next;
          watch(next);
          logger.info(`the claim on journal schema ${schema} is held again (attempt ${attempt})`);
          return;
        }
        const holder = await holderOf(next, schema).catch(() => undefined);
        await next.end().catch(() => undefined);
        resolveLost(
          new NodeFailedError(
            'journal schema claim',
            `another node took journal schema ${schema} while this node was cut off from Postgres${holder === undefined ? '' : ` (${holder})`}; this node stops rather than write beside it`,
          ),
        );
        return;
      } catch (error) {
        await next?.end().catch(() => undefined);
        if (attempt === 1 || attempt % 30 === 0) logger.debug(`the claim on journal schema ${schema} cannot reconnect yet: ${messageOf(error)}`);
      }
    }
  };

  const watch = (watched: pg.Client): void => {
    let broken = false;
    // An idle connection learns of a cut only when it next sends: ask every few seconds, so that a lost lock is noticed within them.
    const heartbeat = setInterval(() => {
      watched.query('SELECT 1').catch((error: unknown) => onBroken(`its heartbeat failed: ${messageOf(error)}`));
    }, heartbeatMs);
    heartbeat.unref();
    const onBroken = (why: string): void => {
      clearInterval(heartbeat);
      if (broken || released || watched !== client) return;
      broken = true;
      void watched.end().catch(() => undefined);
      void reclaim(why);
    };
    watched.on('error', (error) => onBroken(error.message));
    watched.on('end', () => onBroken('the connection ended'));
  };
  watch(client);

  return {
    lost,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      // Ending the session lets the lock go.
      await client.end().catch(() => undefined);
    },
  };
}

async function connect(url: string, applicationName: string, queryTimeoutMs: number): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 5_000, query_timeout: queryTimeoutMs, keepAlive: true });
  // Until watched: an error here must not become an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    // The server ends the session (and frees the lock) within about 25 s of this host going away without closing it (a crash, a cut network),
    // instead of the operating system's default of hours. Ignored on a Unix socket.
    await client.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3');
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

async function tryLock(client: pg.Client, schema: string): Promise<boolean> {
  const { rows } = await client.query<{ taken: boolean }>(`SELECT pg_try_advisory_lock($1::int4, hashtext($2)) AS taken`, [CLAIM_KEY, `dataflow-node:${schema}`]);
  return rows[0]?.taken === true;
}

/** Who holds the claim: the holder's connection name (node id, pid, host), address and start. */
async function holderOf(client: pg.Client, schema: string): Promise<string | undefined> {
  const { rows } = await client.query<{ application_name: string; client_addr: string | null; backend_start: Date }>(
    `SELECT a.application_name, host(a.client_addr) AS client_addr, a.backend_start
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int4::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2`,
    [CLAIM_KEY, `dataflow-node:${schema}`],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return `${row.application_name || 'a connection without a name'}${row.client_addr === null ? '' : ` from ${row.client_addr}`}, since ${row.backend_start.toISOString()}`;
}

function shown(url: string): string {
  try {
    return redacted(new URL(url));
  } catch {
    return 'the configured URL';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
