/**
 * Child process of `data-dir-lock.int.test.ts` (not a test itself: vitest
 * only runs `*.{unit,int,e2e}.test.ts`). Opens a PGlite data directory and
 * prints one JSON line: `{"opened":<pid>}` or `{"tag":...,"message":...}`
 * (exit code 3 then). Opened, it appends one event per line it reads on
 * standard input and closes the store when its input ends.
 *
 *   tsx data-dir-lock-child.test.ts <dataDir>
 */
import { isDataflowError } from '@dataflow/core';
import { createInterface } from 'node:readline';
import { createPglitePersistence } from './pglite-persistence.js';

const [dataDir] = process.argv.slice(2);
if (dataDir === undefined) throw new Error('usage: data-dir-lock-child.test.ts <dataDir>');
let persistence;
try {
  persistence = await createPglitePersistence({ dataDir });
} catch (error) {
  process.stdout.write(`${JSON.stringify({ tag: isDataflowError(error) ? error.tag : undefined, message: (error as Error).message })}\n`);
  process.exit(3);
}
process.stdout.write(`${JSON.stringify({ opened: process.pid })}\n`);
let highest = await persistence.journal.highestSequenceNr('lock-test');
for await (const line of createInterface({ input: process.stdin })) {
  ({ lastSequenceNr: highest } = await persistence.journal.append('lock-test', [{ eventType: 'Line', payload: { line, pid: process.pid } }], {
    expectedSequenceNr: highest,
    writerId: `pid-${process.pid}`,
  }));
  process.stdout.write(`${JSON.stringify({ appended: highest })}\n`);
}
await persistence.close();
