import { InvalidConnectorOptionsError, validatePipelineDefinition, type SinkPosition, type SourceOffset } from '@dataflow/core';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleSink } from '../console/console-sink.js';
import { FileDeadLetterTarget } from '../dead-letter/file-dead-letter-target.js';
import { PostgresDeadLetterTarget } from '../dead-letter/postgres-dead-letter-target.js';
import { FileSink } from '../file/file-sink.js';
import { FileSource } from '../file/file-source.js';
import { GeneratorSource } from '../generator/generator-source.js';
import { createDeadLetterTarget, createSink, createSource } from './create-connector.js';
import { CassandraSink } from '../cassandra/cassandra-sink.js';
import { PostgresSink } from '../postgres/postgres-sink.js';
import { RemoteWriteSource } from '../prometheus-remote-write/remote-write-source.js';
import { allConnectorsRegistry, localConnectorRegistry } from './local-connector-schemas.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-factory-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const signal = new AbortController().signal;

describe('createSource / createSink / createDeadLetterTarget', () => {
  it('builds each local connector from its definition, ignoring a stage onError', () => {
    expect(createSource({ type: 'generator', count: 1, onError: 'dead-letter' })).toBeInstanceOf(GeneratorSource);
    expect(createSource({ type: 'file', path: 'x.csv', format: 'csv' })).toBeInstanceOf(FileSource);
    expect(createSink({ type: 'file', path: 'x.jsonl', format: 'jsonl', onError: 'fail' })).toBeInstanceOf(FileSink);
    expect(createSink({ type: 'console' }, { stream: new Writable() })).toBeInstanceOf(ConsoleSink);
    expect(createDeadLetterTarget({ type: 'file', path: 'dlq.jsonl' })).toBeInstanceOf(FileDeadLetterTarget);
    expect(createDeadLetterTarget({ type: 'postgres', connectionString: 'postgres://localhost/x' })).toBeInstanceOf(PostgresDeadLetterTarget);
  });

  it('builds the remote-write source and the Cassandra and Postgres sinks, with field-level errors', () => {
    expect(createSource({ type: 'prometheus-remote-write', port: 0 })).toBeInstanceOf(RemoteWriteSource);
    const cassandra = { type: 'cassandra', contactPoints: ['127.0.0.1:9042'], localDataCenter: 'dc1', keyspace: 'm', table: 't', columns: { id: 'id' } };
    expect(createSink(cassandra)).toBeInstanceOf(CassandraSink);
    expect(createSink({ type: 'postgres', connectionString: 'postgres://localhost/x', table: 't', columns: { id: 'id' } })).toBeInstanceOf(PostgresSink);
    expect(() => createSink({ ...cassandra, consistency: 'SOME' })).toThrow(/consistency/);
    expect(() => createSource({ type: 'prometheus-remote-write', port: 70_000 })).toThrow(/port/);
    const sinkIssues = validatePipelineDefinition(
      { name: 'metrics', source: { type: 'prometheus-remote-write', port: 0 }, sink: { ...cassandra, keyspace: 'bad keyspace' } },
      { connectors: allConnectorsRegistry },
    );
    expect(sinkIssues.ok ? [] : sinkIssues.issues.map((i) => i.path)).toEqual(['sink.keyspace']);
  });

  it('names the known types when the type is unknown', () => {
    const error = thrownBy(() => createSink({ type: 'elasticsearch' }));
    expect(error).toBeInstanceOf(InvalidConnectorOptionsError);
    expect((error as InvalidConnectorOptionsError).issues).toEqual([
      { path: 'type', message: 'Unknown sink type "elasticsearch"; known: cassandra, console, file, kafka, postgres, tee' },
    ]);
  });

  it('lists every field-level issue of bad options', () => {
    const error = thrownBy(() => createSink({ type: 'file', path: 7, format: 'csv', maxBytes: -1, colums: ['a'] }));
    expect((error as InvalidConnectorOptionsError).issues.map((i) => i.path).sort()).toEqual(['(definition)', 'maxBytes', 'path']);
    expect((error as InvalidConnectorOptionsError).message).toMatch(/colums/);
    expect(() => createSource({ type: 'file', path: 'x', format: 'xml' })).toThrow(/format/);
    expect(() => createDeadLetterTarget({ type: 'postgres', connectionString: 'x', schema: 'Robert"); DROP' })).toThrow(/schema/);
  });

  it('plugs into pipeline validation through the registry', () => {
    const base = { name: 'orders', source: { type: 'generator', rate: 10 }, sink: { type: 'console' } };
    expect(validatePipelineDefinition(base, { connectors: localConnectorRegistry }).ok).toBe(true);
    const bad = validatePipelineDefinition(
      { ...base, source: { type: 'file', path: 'x', format: 'csv', delimiter: '::' }, sink: { type: 'file', path: 'o', format: 'parquet' } },
      { connectors: localConnectorRegistry },
    );
    expect(bad.ok).toBe(false);
    expect(bad.ok ? [] : bad.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['source.delimiter', 'sink.format']));
  });
});

describe('generator -> file sink across a crash', () => {
  it('holds every generated record exactly once after resuming both from the last checkpoint', async () => {
    const path = join(dir, 'exactly-once', 'out.jsonl');
    const sourceDefinition = { type: 'generator', count: 1000, seed: 3, fields: { id: { kind: 'sequence' }, v: { kind: 'int', min: 0, max: 9 } } } as const;
    const sinkDefinition = { type: 'file', path, format: 'jsonl', maxBytes: 4096 };
    let checkpoint: { source: SourceOffset; sink: SinkPosition | undefined } | undefined;

    // Each run writes three batches and crashes before the third one's checkpoint is stored.
    const run = async (): Promise<boolean> => {
      const source = createSource(sourceDefinition);
      const sink = createSink(sinkDefinition);
      await source.open({ pipelineId: 'p', checkpoint: checkpoint?.source, signal });
      await sink.open({ pipelineId: 'p', checkpoint: checkpoint?.sink, signal });
      try {
        for (let n = 0; n < 3; n++) {
          const batch = await source.poll(70, 0);
          const records = batch.records.flatMap((r) => (r.ok ? [r.value] : []));
          const { position } = await sink.write({ batchId: `b${JSON.stringify(batch.offset)}`, records });
          if (n < 2 || batch.done) checkpoint = { source: batch.offset, sink: position };
          if (batch.done) return true;
        }
        return false;
      } finally {
        await source.close();
        await sink.close();
      }
    };
    let finished = false;
    let runs = 0;
    while (!finished && runs < 50) {
      finished = await run();
      runs++;
    }
    // 15 batches of 70, two checkpointed per run: the 7th run reaches the end.
    expect([finished, runs]).toEqual([true, 7]);

    const expected = new GeneratorSource(sourceDefinition);
    const files = (await readdir(join(dir, 'exactly-once'))).sort((a, b) => Number(a.split('.')[2] ?? 0) - Number(b.split('.')[2] ?? 0));
    expect(files.length).toBeGreaterThan(2);
    let all = '';
    for (const file of files) all += await readFile(join(dir, 'exactly-once', file), 'utf8');
    const lines = all.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual(Array.from({ length: 1000 }, (_, i) => expected.recordAt(i)));
  });
});
