#!/usr/bin/env node
// One large group, held alone: what it costs in memory and per self-update.
//
//   node bench/big-group.js build --n 10000 --out /tmp/g10000.bin
//   node --expose-gc bench/big-group.js measure --in /tmp/g10000.bin [--iterations 3] [--clock cpu]
//
// `build` makes the bench's blank group (bench/impl/paired-mls.js: m0 adds
// m1 … m(n-1) in one commit, every parent node blank) and writes m0's
// storage entries to a file. Building it takes minutes at n = 10,000
// (openmls' add of 9,999 members is quadratic), so it is done once.
//
// `measure` runs in a fresh process, so the wasm instance never held the
// creator's 10,000 KeyPackages or the add commit: it opens a client on a
// copy of that storage, loads the group, and reports the wasm linear
// memory and the JS heap (after a full GC) for holding the group, then
// times self-updates (each cleared) and reports the memory again (linear
// memory never shrinks: the second figure is the high-water mark of
// holding the group and committing in it).
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpuUsage, memoryUsage } from 'node:process';
import { MemoryStorageAdapter, MlsClient, init, threadCount, threadStats, wasmMemoryBytes } from 'paired-mls';
import { loadavg } from 'node:os';

const CIPHERSUITE = 1;
const args = process.argv.slice(2);
const command = args[0];
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? fallback : args[at + 1];
};

/**
 * CPU time (ms) of this process's calling thread and of all its other
 * threads (workers, V8/libuv helpers), from /proc (Linux; undefined
 * elsewhere). The calling thread's is the critical path of a commit.
 */
function threadCpuMs() {
  const dir = `/proc/${process.pid}/task`;
  if (!existsSync(dir)) return undefined;
  const ticks = 100; // USER_HZ on Linux
  let main = 0;
  let others = 0;
  for (const tid of readdirSync(dir)) {
    let stat;
    try {
      stat = readFileSync(`${dir}/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
    if (Number(tid) === process.pid) main += ms;
    else others += ms;
  }
  return { main, others };
}

/** entries as [u32 count] then per entry [u32 klen][key][u32 vlen][value]. */
function encodeEntries(groupId, entries) {
  const parts = [];
  const u32 = (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    parts.push(b);
  };
  u32(groupId.length);
  parts.push(Buffer.from(groupId));
  u32(entries.length);
  for (const [k, v] of entries) {
    u32(k.length);
    parts.push(Buffer.from(k));
    u32(v.length);
    parts.push(Buffer.from(v));
  }
  return Buffer.concat(parts);
}

function decodeEntries(buf) {
  let at = 0;
  const take = (len) => new Uint8Array(buf.subarray(at, (at += len)));
  const u32 = () => {
    const v = buf.readUInt32BE(at);
    at += 4;
    return v;
  };
  const groupId = take(u32());
  const count = u32();
  const entries = [];
  for (let i = 0; i < count; i++) entries.push([take(u32()), take(u32())]);
  return { groupId, entries };
}

async function build() {
  const n = Number(option('n', '10000'));
  const out = option('out', `/tmp/paired-mls-group-${n}.bin`);
  const started = Date.now();
  const m0 = await MlsClient.open();
  const group = await m0.createGroup(await m0.createIdentity('m0', CIPHERSUITE));
  const filler = await MlsClient.open();
  const keyPackages = [];
  for (let i = 1; i < n; i++) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${i}`, CIPHERSUITE)));
  process.stderr.write(`${n - 1} KeyPackages in ${Date.now() - started} ms\n`);
  await group.commit({ add: keyPackages });
  await group.mergePendingCommit();
  filler.free();
  if (group.state().memberCount !== n) throw new Error(`expected ${n} members`);
  const entries = await m0.storage.entries();
  writeFileSync(out, encodeEntries(group.id, entries));
  const bytes = entries.reduce((sum, [k, v]) => sum + k.length + v.length, 0);
  process.stderr.write(`built n = ${n} in ${Date.now() - started} ms; m0's storage: ${entries.length} entries, ${bytes} bytes -> ${out}\n`);
}

function heap() {
  globalThis.gc?.();
  const { heapUsed, external, arrayBuffers } = memoryUsage();
  return { heap_used: heapUsed, external, array_buffers: arrayBuffers };
}

async function measure() {
  const input = option('in', '/tmp/paired-mls-group-10000.bin');
  const iterations = Number(option('iterations', '3'));
  const clock = option('clock', 'wall');
  const { groupId, entries } = decodeEntries(readFileSync(input));
  const stored = entries.reduce((sum, [k, v]) => sum + k.length + v.length, 0);
  const storage = new MemoryStorageAdapter();
  await storage.apply({ puts: entries, deletes: [] });
  entries.length = 0;
  await init();
  const before = wasmMemoryBytes();
  const client = await MlsClient.open({ storage });
  // The core keeps a copy of every stored record (its journaled map);
  // the group's structures are built on first use.
  const records = wasmMemoryBytes();
  const group = client.group(groupId);
  const n = group.state().memberCount;
  const held = { wasm: wasmMemoryBytes(), wasm_fresh_instance: before, wasm_after_loading_records: records, ...heap() };
  const now = () => (clock === 'cpu' ? (({ user, system }) => (user + system) / 1000)(cpuUsage()) : performance.now());
  const times = [];
  const cpuTimes = [];
  const threadTimes = [];
  const loadAtStart = loadavg();
  for (let i = 0; i < iterations + 1; i++) {
    const t0 = now();
    const c0 = cpuUsage();
    const th0 = threadCpuMs();
    await group.selfUpdate();
    const t1 = now();
    const c1 = cpuUsage(c0);
    const th1 = threadCpuMs();
    await group.clearPendingCommit();
    // The first one is a warm-up (and starts the worker pool, if any).
    if (i > 0) {
      times.push(t1 - t0);
      cpuTimes.push((c1.user + c1.system) / 1000);
      if (th0 && th1) threadTimes.push({ main: th1.main - th0.main, others: th1.others - th0.others });
    }
  }
  const after = { wasm: wasmMemoryBytes(), ...heap() };
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const report = {
    n,
    stored_bytes: stored,
    held: { ...held, wasm_per_member: held.wasm / n },
    after_self_updates: { ...after, wasm_per_member: after.wasm / n },
    self_update_ms: { clock, mean, samples: times.map((t) => Math.round(t * 10) / 10) },
    // Process CPU time (all threads) of the same self-updates.
    self_update_cpu_ms: { mean: cpuTimes.reduce((a, b) => a + b, 0) / cpuTimes.length, samples: cpuTimes.map((t) => Math.round(t * 10) / 10) },
    // Per thread (10 ms resolution): the calling thread's CPU is what a
    // quiet machine's wall clock cannot go below.
    self_update_thread_cpu_ms: threadTimes.length ? { main: threadTimes.map((t) => t.main), others: threadTimes.map((t) => t.others) } : undefined,
    threads: { set: threadCount(), pool: threadStats() },
    load_average: { start: loadAtStart, end: loadavg() },
  };
  console.log(JSON.stringify(report, null, 2));
  client.free();
}

if (command === 'build') await build();
else if (command === 'measure') await measure();
else {
  process.stderr.write('usage: big-group.js build --n N --out FILE | measure --in FILE [--iterations K] [--clock wall|cpu]\n');
  process.exit(2);
}
