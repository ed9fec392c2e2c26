// Page-side raw IndexedDB access for test/browser-storage.test.ts: what an
// attacker with the browser profile reads and changes, below the adapter.
// The log records are decoded here on their own (not with the library's
// decoder): entry = op:u8 (1 put, 0 delete) ‖ key_len:u32be ‖ key ‖
// [value_len:u32be ‖ value] (docs/PROTOCOL.md §2.3, §2.4).

const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

function result(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function completion(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
    tx.onerror = () => reject(tx.error);
  });
}

/** The database `name` at its current schema version (null when `version` is given and it is created). */
export function openRaw(name, version, upgrade) {
  const request = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version);
  if (upgrade) request.onupgradeneeded = () => upgrade(request.result);
  return result(request);
}

/** Keys and values of one object store. */
export async function readStore(db, store) {
  const s = db.transaction(store).objectStore(store);
  const [keys, values] = await Promise.all([result(s.getAllKeys()), result(s.getAll())]);
  return { keys, values };
}

/** The entries of one log record, each with where its value starts and ends in the record. */
export function decodeLogRecord(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const out = [];
  let pos = 0;
  while (pos < bytes.length) {
    const op = bytes[pos++];
    const keyLength = view.getUint32(pos);
    const key = bytes.slice(pos + 4, pos + 4 + keyLength);
    pos += 4 + keyLength;
    if (op === 1) {
      const valueLength = view.getUint32(pos);
      out.push({ op, key, valueStart: pos + 4, valueEnd: pos + 4 + valueLength });
      pos += 4 + valueLength;
    } else out.push({ op, key });
  }
  return out;
}

/**
 * Flips one bit in the middle of the newest stored copy of `key`'s value:
 * the last log record that puts it, else its `entries` record. Returns
 * where that copy was ('log' or 'entries').
 */
export async function tamperLatest(name, key) {
  const db = await openRaw(name);
  const tx = db.transaction(['log', 'entries'], 'readwrite');
  const done = completion(tx);
  const log = tx.objectStore('log');
  const [logKeys, logValues] = await Promise.all([result(log.getAllKeys()), result(log.getAll())]);
  let where = 'entries';
  for (let i = logValues.length - 1; i >= 0 && where === 'entries'; i--) {
    const put = decodeLogRecord(logValues[i]).filter((e) => e.op === 1 && hex(e.key) === hex(key)).at(-1);
    if (!put) continue;
    const bytes = new Uint8Array(logValues[i].slice(0));
    bytes[(put.valueStart + put.valueEnd) >> 1] ^= 1;
    log.put(bytes.buffer, logKeys[i]);
    where = 'log';
  }
  if (where === 'entries') {
    const entries = tx.objectStore('entries');
    const value = await result(entries.get(hex(key)));
    if (!(value instanceof ArrayBuffer)) throw new Error('no stored copy of that key');
    const bytes = new Uint8Array(value.slice(0));
    bytes[bytes.length >> 1] ^= 1;
    entries.put(bytes.buffer, hex(key));
  }
  await done;
  db.close();
  return where;
}

/** Cuts the last byte off the newest log record. */
export async function truncateLastLogRecord(name) {
  const db = await openRaw(name);
  const tx = db.transaction('log', 'readwrite');
  const done = completion(tx);
  const log = tx.objectStore('log');
  const keys = await result(log.getAllKeys());
  const last = await result(log.get(keys.at(-1)));
  log.put(last.slice(0, last.byteLength - 1), keys.at(-1));
  await done;
  db.close();
}

/** How many records each store of `name` holds. */
export async function counts(name) {
  const db = await openRaw(name);
  const out = {};
  for (const store of db.objectStoreNames) out[store] = (await readStore(db, store)).keys.length;
  db.close();
  return out;
}

/** The names of the rows in `name`'s meta store, comma-separated (which of format, encryption, key, key-check are there). */
export async function metaKeys(name) {
  const db = await openRaw(name);
  const { keys } = await readStore(db, 'meta');
  db.close();
  return keys.join();
}

/**
 * A copy of the database `from` as the previous version laid it out
 * (format 2: schema version 1, `entries` and `meta` only). `from`'s log
 * must be empty (folded), as format 2 had none.
 */
export async function copyAsFormat2(from, to) {
  const source = await openRaw(from);
  const entries = await readStore(source, 'entries');
  const meta = await readStore(source, 'meta');
  if ((await readStore(source, 'log')).keys.length !== 0) throw new Error('fold the log first');
  source.close();
  const db = await openRaw(to, 1, (created) => {
    created.createObjectStore('entries');
    created.createObjectStore('meta');
  });
  const tx = db.transaction(['entries', 'meta'], 'readwrite');
  const done = completion(tx);
  entries.keys.forEach((k, i) => tx.objectStore('entries').put(entries.values[i], k));
  meta.keys.forEach((k, i) => tx.objectStore('meta').put(k === 'format' ? 2 : meta.values[i], k));
  await done;
  db.close();
}

/** The `meta` store's `format`. */
export async function storedFormat(name) {
  const db = await openRaw(name);
  const meta = await readStore(db, 'meta');
  db.close();
  return meta.values[meta.keys.indexOf('format')];
}

/** Writes one raw record (any key, any value) into `store` of `name`. */
export async function putRaw(name, store, key, value) {
  const db = await openRaw(name);
  const tx = db.transaction(store, 'readwrite');
  const done = completion(tx);
  tx.objectStore(store).put(value, key);
  await done;
  db.close();
}

/**
 * Runs `during()` as soon as the next readwrite transaction is opened on
 * any database of this page (before it commits), then stops watching.
 * Returns what `during()` returned.
 */
export function onNextReadwrite(during) {
  const original = IDBDatabase.prototype.transaction;
  let resolveResult;
  const result = new Promise((resolve) => (resolveResult = resolve));
  IDBDatabase.prototype.transaction = function (...args) {
    const tx = original.apply(this, args);
    if (args[1] === 'readwrite') {
      IDBDatabase.prototype.transaction = original;
      resolveResult(during());
    }
    return tx;
  };
  return result;
}
