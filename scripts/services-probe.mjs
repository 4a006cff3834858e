#!/usr/bin/env node
// Readiness probe for the DataFlow test services, used by scripts/services.sh.
//
// Speaks each service's wire protocol directly over TCP (no npm dependency, so it
// works before `npm ci`) and succeeds only when the service really answers:
//   kafka     ApiVersions v0, then Metadata (v1-v8, empty topic list): at least one broker
//   cql       native protocol v4 STARTUP, then QUERY
//             `SELECT release_version, data_center FROM system.local`: a Rows result
//   postgres  StartupMessage v3: AuthenticationOk ... ReadyForQuery (or an auth request)
//   redis     PING (AUTH first if the URL has a password): +PONG
//
// Usage: node services-probe.mjs <kafka|cql|postgres|redis> <target> [--timeout S] [--pid PID] [--quiet]
//   target   kafka: host:port[,host:port...]   cql: host[:port][,...] (default port 9042)
//            postgres: postgres://user@host:port/db or host:port   redis: redis://[:pass@]host:port or host:port
//   --timeout  keep retrying for S seconds (default 0: a single attempt)
//   --pid      stop waiting (exit 3) as soon as this process has exited
// Exit codes: 0 ready, 1 not ready / timed out, 2 usage error, 3 watched process exited.
// On success, facts learned are printed on stdout as key=value lines; messages go to stderr.

import net from 'node:net';
import fs from 'node:fs';

const ATTEMPT_TIMEOUT_MS = 3000;
const RETRY_DELAY_MS = 250;

class Fatal extends Error {} // the service answered, but waiting will not help

function usage(msg) {
  if (msg) process.stderr.write(`services-probe: ${msg}\n`);
  process.stderr.write(
    'usage: services-probe.mjs <kafka|cql|postgres|redis> <target> [--timeout S] [--pid PID] [--quiet]\n',
  );
  process.exit(2);
}

function splitHostPort(spec, defaultPort) {
  const s = spec.trim();
  let m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s); // [ipv6]:port
  if (m) return { host: m[1], port: Number(m[2] ?? defaultPort) };
  m = /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`cannot parse address "${spec}"`);
  return { host: m[1], port: Number(m[2] ?? defaultPort) };
}

function parseUrlTarget(spec, defaultPort, defaults = {}) {
  if (!spec.includes('://')) return { ...splitHostPort(spec, defaultPort), ...defaults };
  const u = new URL(spec);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || defaultPort),
    user: decodeURIComponent(u.username) || defaults.user,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || defaults.database,
  };
}

// A connected socket with an async "read exactly n bytes" helper.
function connect({ host, port }) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let waiter = null;
    let ended = null;
    const wake = () => {
      if (!waiter) return;
      if (buf.length >= waiter.n) {
        const out = buf.subarray(0, waiter.n);
        buf = buf.subarray(waiter.n);
        const w = waiter;
        waiter = null;
        w.resolve(out);
      } else if (ended) {
        const w = waiter;
        waiter = null;
        w.reject(ended);
      }
    };
    sock.setNoDelay(true);
    sock.setTimeout(ATTEMPT_TIMEOUT_MS, () => sock.destroy(new Error('timed out waiting for an answer')));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      wake();
    });
    sock.on('error', (e) => {
      ended = e;
      wake();
      reject(e);
    });
    sock.on('close', () => {
      ended ??= new Error('connection closed by the server');
      wake();
    });
    sock.on('connect', () =>
      resolve({
        write: (b) => sock.write(b),
        read: (n) =>
          new Promise((res, rej) => {
            waiter = { n, resolve: res, reject: rej };
            wake();
          }),
        close: () => sock.destroy(),
      }),
    );
  });
}

// Minimal big-endian reader.
class Reader {
  constructor(buf) {
    this.b = buf;
    this.o = 0;
  }
  i8() { const v = this.b.readInt8(this.o); this.o += 1; return v; }
  i16() { const v = this.b.readInt16BE(this.o); this.o += 2; return v; }
  i32() { const v = this.b.readInt32BE(this.o); this.o += 4; return v; }
  bytes(n) { const v = this.b.subarray(this.o, this.o + n); this.o += n; return v; }
  str16() { const n = this.i16(); return n < 0 ? null : this.bytes(n).toString('utf8'); }
  cstr() {
    const end = this.b.indexOf(0, this.o);
    const v = this.b.toString('utf8', this.o, end);
    this.o = end + 1;
    return v;
  }
}

// ---------------------------------------------------------------- Kafka
function kafkaRequest(apiKey, apiVersion, correlationId, body) {
  const clientId = Buffer.from('dataflow-services-probe');
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(apiVersion, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(clientId.length, 8);
  const payload = Buffer.concat([header, clientId, body]);
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length, 0);
  return Buffer.concat([size, payload]);
}

async function kafkaCall(conn, apiKey, apiVersion, correlationId, body) {
  conn.write(kafkaRequest(apiKey, apiVersion, correlationId, body));
  const size = (await conn.read(4)).readInt32BE(0);
  const r = new Reader(await conn.read(size));
  const cid = r.i32(); // response header v0 (all versions used here are non-flexible)
  if (cid !== correlationId) throw new Error(`unexpected correlation id ${cid}`);
  return r;
}

async function probeKafkaBroker(addr) {
  const conn = await connect(addr);
  try {
    // ApiVersions v0: which Metadata versions does the broker accept?
    const av = await kafkaCall(conn, 18, 0, 1, Buffer.alloc(0));
    const err = av.i16();
    if (err !== 0) throw new Error(`ApiVersions error code ${err}`);
    let meta = null;
    for (let i = av.i32(); i > 0; i--) {
      const key = av.i16();
      const min = av.i16();
      const max = av.i16();
      if (key === 3) meta = { min, max };
    }
    if (!meta) throw new Error('broker does not list the Metadata API');
    const version = Math.min(meta.max, 8); // v9+ is the flexible encoding, not needed here
    if (version < meta.min || version < 1) throw new Error(`no usable Metadata version (${meta.min}-${meta.max})`);

    // Metadata: empty topic list (v1+: "no topics"), so the answer is just brokers + cluster.
    const parts = [Buffer.from([0, 0, 0, 0])];
    if (version >= 4) parts.push(Buffer.from([0])); // allow_auto_topic_creation = false
    if (version >= 8) parts.push(Buffer.from([0, 0])); // include cluster/topic authorized operations
    const md = await kafkaCall(conn, 3, version, 2, Buffer.concat(parts));
    if (version >= 3) md.i32(); // throttle_time_ms
    const brokers = [];
    for (let i = md.i32(); i > 0; i--) {
      const id = md.i32();
      const host = md.str16();
      const port = md.i32();
      md.str16(); // rack
      brokers.push(`${id}@${host}:${port}`);
    }
    const clusterId = version >= 2 ? md.str16() : null;
    const controllerId = md.i32();
    if (brokers.length === 0) throw new Error('metadata lists no live broker yet');
    return {
      summary: `${brokers.length} broker(s) ${brokers.join(' ')}, cluster ${clusterId}`,
      facts: { brokers: brokers.join(','), cluster_id: clusterId ?? '', controller_id: controllerId },
    };
  } finally {
    conn.close();
  }
}

async function probeKafka(target) {
  const addrs = target.split(',').filter(Boolean).map((s) => splitHostPort(s, 9092));
  let last;
  for (const a of addrs) {
    try {
      return await probeKafkaBroker(a);
    } catch (e) {
      last = new Error(`${a.host}:${a.port}: ${e.message}`);
    }
  }
  throw last;
}

// ---------------------------------------------------------------- CQL (native protocol v4)
function cqlFrame(stream, opcode, body) {
  const h = Buffer.alloc(9);
  h.writeUInt8(0x04, 0); // v4 request
  h.writeUInt8(0, 1); // flags
  h.writeInt16BE(stream, 2);
  h.writeUInt8(opcode, 4);
  h.writeInt32BE(body.length, 5);
  return Buffer.concat([h, body]);
}

const cqlString = (s) => {
  const b = Buffer.from(s);
  const l = Buffer.alloc(2);
  l.writeUInt16BE(b.length, 0);
  return Buffer.concat([l, b]);
};

async function cqlCall(conn, stream, opcode, body) {
  conn.write(cqlFrame(stream, opcode, body));
  const h = await conn.read(9);
  const version = h.readUInt8(0);
  const op = h.readUInt8(4);
  const len = h.readInt32BE(5);
  const r = new Reader(await conn.read(len));
  if (version !== 0x84) throw new Error(`unexpected protocol version byte 0x${version.toString(16)}`);
  if (h.readUInt8(1) & 0x08) {
    // warning flag: a [string list] precedes the body
    for (let i = r.i16(); i > 0; i--) r.str16();
  }
  if (op === 0x00) {
    const code = r.i32();
    throw new Error(`CQL error 0x${code.toString(16)}: ${r.str16()}`);
  }
  return { op, r };
}

// Skip a CQL [option] type description (only used to walk column specs).
function skipCqlType(r) {
  const id = r.i16();
  if (id === 0x0000) r.str16(); // custom
  else if (id === 0x0020 || id === 0x0022) skipCqlType(r); // list, set
  else if (id === 0x0021) { skipCqlType(r); skipCqlType(r); } // map
  else if (id === 0x0030) { r.str16(); r.str16(); for (let n = r.i16(); n > 0; n--) { r.str16(); skipCqlType(r); } } // udt
  else if (id === 0x0031) { for (let n = r.i16(); n > 0; n--) skipCqlType(r); } // tuple
}

async function probeCqlNode(addr) {
  const conn = await connect(addr);
  try {
    const startup = Buffer.concat([Buffer.from([0, 1]), cqlString('CQL_VERSION'), cqlString('3.0.0')]);
    const s = await cqlCall(conn, 1, 0x01, startup);
    if (s.op === 0x03) throw new Fatal(`server requires authentication (${s.r.str16()})`);
    if (s.op !== 0x02) throw new Error(`expected READY, got opcode 0x${s.op.toString(16)}`);

    const q = 'SELECT release_version, data_center FROM system.local';
    const qb = Buffer.from(q);
    const qlen = Buffer.alloc(4);
    qlen.writeInt32BE(qb.length, 0);
    const body = Buffer.concat([qlen, qb, Buffer.from([0x00, 0x01, 0x00])]); // consistency ONE, no flags
    const { op, r } = await cqlCall(conn, 2, 0x07, body);
    if (op !== 0x08) throw new Error(`expected RESULT, got opcode 0x${op.toString(16)}`);
    const kind = r.i32();
    if (kind !== 0x0002) throw new Error(`expected a Rows result, got kind ${kind}`);
    const flags = r.i32();
    const columns = r.i32();
    if (flags & 0x0002) { const n = r.i32(); if (n > 0) r.bytes(n); } // paging state
    const global = flags & 0x0001;
    if (global) { r.str16(); r.str16(); }
    const names = [];
    if (!(flags & 0x0004)) {
      for (let i = 0; i < columns; i++) {
        if (!global) { r.str16(); r.str16(); }
        names.push(r.str16());
        skipCqlType(r);
      }
    }
    const rows = r.i32();
    if (rows < 1) throw new Error('system.local returned no row yet');
    const facts = {};
    for (let i = 0; i < columns; i++) {
      const n = r.i32();
      facts[names[i] ?? `col${i}`] = n < 0 ? '' : r.bytes(n).toString('utf8');
    }
    return { summary: `Cassandra ${facts.release_version}, data centre ${facts.data_center}`, facts };
  } finally {
    conn.close();
  }
}

async function probeCql(target) {
  const addrs = target.split(',').filter(Boolean).map((s) => splitHostPort(s, 9042));
  let last;
  for (const a of addrs) {
    try {
      return await probeCqlNode(a);
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = new Error(`${a.host}:${a.port}: ${e.message}`);
    }
  }
  throw last;
}

// ---------------------------------------------------------------- PostgreSQL
async function probePostgres(target) {
  const t = parseUrlTarget(target, 5432, { user: 'postgres', database: 'postgres' });
  const conn = await connect(t);
  try {
    const kv = Buffer.concat([
      Buffer.from(`user\0${t.user}\0database\0${t.database}\0application_name\0dataflow-services-probe\0\0`),
    ]);
    const head = Buffer.alloc(8);
    head.writeInt32BE(8 + kv.length, 0);
    head.writeInt32BE(196608, 4); // protocol 3.0
    conn.write(Buffer.concat([head, kv]));
    const facts = {};
    for (;;) {
      const h = await conn.read(5);
      const type = String.fromCharCode(h[0]);
      const r = new Reader(await conn.read(h.readInt32BE(1) - 4));
      if (type === 'R') {
        const code = r.i32();
        if (code !== 0) {
          // The server is up and asks for a password: it answers, but we do not authenticate.
          return { summary: `server answers, asks for authentication (method ${code})`, facts: { auth: code } };
        }
      } else if (type === 'S') {
        const k = r.cstr();
        const v = r.cstr();
        if (k === 'server_version') facts.server_version = v;
      } else if (type === 'E') {
        const f = {};
        for (let c = r.i8(); c !== 0; c = r.i8()) f[String.fromCharCode(c)] = r.cstr();
        const msg = `${f.C ?? '?'} ${f.M ?? 'error'}`;
        if (f.C === '57P03') throw new Error(msg); // starting up / shutting down: retry
        throw new Fatal(msg);
      } else if (type === 'Z') {
        conn.write(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
        return { summary: `PostgreSQL ${facts.server_version ?? ''}, ${t.user}@${t.database}`, facts };
      }
    }
  } finally {
    conn.close();
  }
}

// ---------------------------------------------------------------- Redis
const resp = (...args) =>
  Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);

async function readLine(conn) {
  let line = '';
  for (;;) {
    const c = (await conn.read(1)).toString('latin1');
    if (c === '\n') return line.replace(/\r$/, '');
    line += c;
  }
}

async function probeRedis(target) {
  const t = parseUrlTarget(target, 6379);
  const conn = await connect(t);
  try {
    if (t.password !== undefined) {
      conn.write(t.user ? resp('AUTH', t.user, t.password) : resp('AUTH', t.password));
      const a = await readLine(conn);
      if (!a.startsWith('+')) throw new Fatal(`AUTH: ${a}`);
    }
    conn.write(resp('PING'));
    const line = await readLine(conn);
    if (line === '+PONG') return { summary: 'PONG', facts: {} };
    if (line.startsWith('-LOADING') || line.startsWith('-BUSY')) throw new Error(line);
    throw new Fatal(line);
  } finally {
    conn.close();
  }
}

// ---------------------------------------------------------------- main
const probes = { kafka: probeKafka, cql: probeCql, cassandra: probeCql, postgres: probePostgres, redis: probeRedis };

function processGone(pid) {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === 'ESRCH';
  }
  try {
    // A zombie still accepts signals: look at its state.
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function main() {
  const args = process.argv.slice(2);
  let timeout = 0;
  let pid = null;
  let quiet = false;
  const pos = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--timeout') timeout = Number(args[++i]);
    else if (args[i] === '--pid') pid = Number(args[++i]);
    else if (args[i] === '--quiet') quiet = true;
    else pos.push(args[i]);
  }
  if (pos.length !== 2 || !probes[pos[0]] || !(timeout >= 0)) usage();
  const [kind, target] = pos;
  const deadline = Date.now() + timeout * 1000;
  let lastMsg = '';
  for (;;) {
    try {
      const { summary, facts } = await probes[kind](target);
      for (const [k, v] of Object.entries(facts)) process.stdout.write(`${k}=${v}\n`);
      if (!quiet) process.stderr.write(`${kind} ${target}: ready (${summary})\n`);
      return 0;
    } catch (e) {
      lastMsg = e.message;
      if (e instanceof Fatal) {
        process.stderr.write(`${kind} ${target}: answered but is not usable: ${lastMsg}\n`);
        return 1;
      }
    }
    if (pid && processGone(pid)) {
      if (!quiet) process.stderr.write(`${kind} ${target}: process ${pid} exited (last probe: ${lastMsg})\n`);
      return 3;
    }
    if (Date.now() + RETRY_DELAY_MS > deadline) break;
    await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
  }
  if (!quiet) process.stderr.write(`${kind} ${target}: not ready (${lastMsg})\n`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`services-probe: ${e.stack ?? e}\n`);
    process.exit(2);
  },
);
