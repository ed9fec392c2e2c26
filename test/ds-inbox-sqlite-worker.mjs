// A DS on a shared SQLite file in a thread of its own (test/ds-inbox-review): submits its commits when told, reports the answers.
import { parentPort, workerData } from 'node:worker_threads';
import { DeliveryService } from 'paired-mls/services';
import { SqliteDeliveryStore } from 'paired-mls/server';

const { file, max, groups, victim, welcome, go } = workerData;
const store = new SqliteDeliveryStore(file);
const ds = await DeliveryService.create({ store, maxPendingWelcomes: max });
const commitFor = (gid, fill) => new Uint8Array([0, 1, 0, 2, gid.length, ...gid, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, fill, fill, fill, fill]);
parentPort.postMessage('ready');
Atomics.wait(new Int32Array(go), 0, 0);
const answers = [];
for (const gid of groups) {
  try {
    const a = await ds.submit(Uint8Array.from(gid), 'alice', commitFor(Uint8Array.from(gid), gid[1]), { welcome: Uint8Array.from(welcome), added: [victim] });
    answers.push(a.accepted ? 'accepted' : a.reason);
  } catch (err) {
    answers.push(err.code ?? String(err));
  }
}
store.close();
parentPort.postMessage(answers);
