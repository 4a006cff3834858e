/**
 * Child process of `pglite-recovery.int.test.ts` (not a test itself: vitest
 * only runs `*.{unit,int,e2e}.test.ts`). Appends events and a snapshot to a
 * PGlite data directory, then exits, closing the database or not.
 *
 *   tsx pglite-recovery-child.test.ts <dataDir> <persistenceId> <events> <close|exit>
 */
import { createPglitePersistence } from './pglite-persistence.js';

const [dataDir, persistenceId, countText, ending] = process.argv.slice(2);
if (dataDir === undefined || persistenceId === undefined || countText === undefined || (ending !== 'close' && ending !== 'exit')) {
  throw new Error('usage: pglite-recovery-child.test.ts <dataDir> <persistenceId> <events> <close|exit>');
}
const count = Number(countText);
const persistence = await createPglitePersistence({ dataDir });
let highest = await persistence.journal.highestSequenceNr(persistenceId);
for (let i = 0; i < count; i += 10) {
  const events = Array.from({ length: Math.min(10, count - i) }, (_, k) => ({
    eventType: 'Written',
    payload: { n: highest + k + 1, pid: process.pid, bytes: new Uint8Array([k, 255 - k]) },
    tags: ['recovery'],
  }));
  ({ lastSequenceNr: highest } = await persistence.journal.append(persistenceId, events, { expectedSequenceNr: highest, writerId: `pid-${process.pid}` }));
}
await persistence.snapshots.save({ persistenceId, sequenceNr: highest, timestamp: Date.now() }, { total: highest });
process.stdout.write(`${JSON.stringify({ highest })}\n`);
if (ending === 'close') await persistence.close();
// 'exit' leaves without closing, like a process that is killed after its appends returned.
process.exit(0);
