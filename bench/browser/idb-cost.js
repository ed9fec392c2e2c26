// What Chromium's IndexedDB charges a write (bench/idb-cost.js runs this
// page): one readwrite transaction with `puts` requests of `size` bytes
// each, timed from opening the transaction to its completion. The split
// into a per-transaction and a per-request cost is why the IndexedDB
// adapter writes a batch as one log record (bench/README.md "Round 2n").

const result = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
const completion = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('aborted'));
  });

/**
 * The shapes measured: a commit's batch (~12 entries, ~5 KB at n = 16,
 * ~24 KB at n = 128) as many records or as one; `log`: one `add` to an
 * autoincrement store, as the adapter's log record (instead of a keyed put);
 * `commit`: `tx.commit()` called once the requests are issued, so the
 * transaction commits without waiting for their success events.
 */
const SHAPES = [
  { puts: 1, size: 400 },
  { puts: 1, size: 5000 },
  { puts: 2, size: 2500 },
  { puts: 4, size: 1250 },
  { puts: 12, size: 420 },
  { puts: 24, size: 210 },
  { puts: 1, size: 24000 },
  { puts: 12, size: 2000 },
  { puts: 1, size: 174000 },
  { puts: 1, size: 5000, log: true },
  { puts: 1, size: 24000, log: true },
  { puts: 1, size: 5000, durability: 'relaxed' },
  { puts: 12, size: 420, durability: 'relaxed' },
  { puts: 1, size: 400, log: true, commit: true },
  { puts: 1, size: 5000, log: true, commit: true },
  { puts: 1, size: 24000, log: true, commit: true },
  { puts: 12, size: 420, commit: true },
  { puts: 1, size: 5000, log: true, commit: true, durability: 'strict' },
  { puts: 1, size: 5000, log: true, commit: true, durability: 'relaxed' },
];

window.idbCost = async ({ rounds, runs }) => {
  const open = indexedDB.open(`idb-cost-${Date.now()}`, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('s');
    open.result.createObjectStore('log', { autoIncrement: true });
  };
  const db = await result(open);
  const rows = SHAPES.map((shape) => ({ ...shape, ms: [] }));
  // Shape by shape within each run, so every shape sees the same drift.
  for (let round = 0; round < rounds; round++) {
    for (let run = 0; run < runs; run++) {
      for (const row of rows) {
        const values = Array.from({ length: row.puts }, () => {
          const value = new Uint8Array(row.size);
          for (let at = 0; at < row.size; at += 65536) crypto.getRandomValues(value.subarray(at, Math.min(row.size, at + 65536)));
          return value.buffer;
        });
        const start = performance.now();
        const name = row.log ? 'log' : 's';
        const tx = row.durability ? db.transaction(name, 'readwrite', { durability: row.durability }) : db.transaction(name, 'readwrite');
        const store = tx.objectStore(name);
        values.forEach((value, i) => (row.log ? store.add(value) : store.put(value, `key-${i}`)));
        const completed = completion(tx);
        if (row.commit) tx.commit();
        await completed;
        row.ms.push(performance.now() - start);
      }
    }
  }
  db.close();
  return rows;
};
window.idbCostReady = true;
