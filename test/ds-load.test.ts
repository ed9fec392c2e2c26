/**
 * Load through the networked DS, with a crash: 200 clients in 20 groups
 * send 20,000 application messages (plus a commit per group every ten
 * rounds) through a DS server process on loopback, which is killed
 * (SIGKILL) and restarted on the same SQLite file half-way. Every client
 * must receive every message of its group exactly once, in one order, and
 * every group must agree on its epoch. Every client is authenticated (its
 * session token survives the restart: the MAC key is in the database), and
 * the database syncs every commit (synchronous=FULL). Throughput and p99
 * submit latency are reported (not asserted: speed is for benchmarks).
 */
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { utf8 } from 'paired-mls';
import { DeliveryClient, DsError } from 'paired-mls/services';
import { expectInSync, newMember, type Member } from './helpers.js';
import { freePort } from './pg-server.js';

const GROUPS = 20;
const PER_GROUP = 10;
const ROUNDS = 100; // 200 clients x 100 rounds = 20,000 messages

function startServer(port: number, db: string): ChildProcess {
  // 200 clients share one address here: the per-address limits (requests, new clients) are raised; the per-client one stays at its default.
  // DS_LOAD_SQLITE_SYNC=NORMAL measures what synchronous=FULL (the default) costs.
  const sync = process.env.DS_LOAD_SQLITE_SYNC ? ['--sqlite-sync', process.env.DS_LOAD_SQLITE_SYNC] : [];
  return spawn(process.execPath, ['scripts/ds.js', '--port', String(port), '--db', db, '--ip-rate', '100000', '--registration-rate', '1000', ...sync], { stdio: 'ignore' });
}

async function waitHealthy(ds: { client: DeliveryClient }): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await ds.client.healthy()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the DS did not come up');
}

interface Client extends Member {
  ds: DeliveryClient;
  seen: number;
  /** Sequence numbers received, to detect gaps and duplicates. */
  seqs: number[];
  texts: Set<string>;
}

/** Retry while the server is down (connection refused: DsError `unavailable`); DS refusals are returned. */
async function retrying<T>(ds: { client: DeliveryClient }, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof DsError) || err.reason !== 'unavailable') throw err;
      await waitHealthy(ds);
    }
  }
}

describe('DS under load with a crash', () => {
  it(`${GROUPS * PER_GROUP} clients, ${GROUPS} groups, ${GROUPS * PER_GROUP * ROUNDS} messages, server killed and restarted mid-run`, async () => {
    const port = await freePort();
    const db = join(mkdtempSync(join(tmpdir(), 'paired-mls-load-')), 'ds.sqlite');
    let server = startServer(port, db);
    const ds = { url: `http://127.0.0.1:${port}`, client: new DeliveryClient(`http://127.0.0.1:${port}`) };
    await waitHealthy(ds);
    try {
      const groups: Client[][] = [];
      for (let g = 0; g < GROUPS; g++) {
        const members: Client[] = [];
        for (let i = 0; i < PER_GROUP; i++) {
          const m = await newMember(`g${g}-m${i}`);
          const account = { clientId: m.name, client: m.client, identity: m.identity };
          members.push({ ...m, ds: await DeliveryClient.register(ds.url, account, { WebSocket }), seen: 0, seqs: [], texts: new Set() });
        }
        for (const m of members.slice(1)) await m.ds.uploadKeyPackages([await m.client.createKeyPackage(m.identity)]);
        const [creator, ...rest] = members as [Client, ...Client[]];
        creator.group = await creator.client.createGroup(creator.identity);
        await creator.ds.createGroup(creator.group.id, { epoch: creator.group.epoch });
        const kps = await creator.ds.fetchKeyPackages(rest.map((m) => m.name));
        const { commit, welcome } = await creator.group.commit({ add: [...kps.values()] });
        await creator.ds.submit(creator.group.id, commit, { welcome, added: rest.map((m) => m.name) });
        await creator.ds.ackKeyPackages(rest.map((m) => m.name));
        await creator.group.mergePendingCommit();
        for (const m of rest) {
          const [w] = await m.ds.welcomes();
          m.group = await m.client.joinFromWelcome(w!.welcome);
          await m.ds.ackWelcomes([w!.id]);
        }
        groups.push(members);
      }
      const everyone = groups.flat();
      // Everyone starts after the setup commit.
      for (const m of everyone) {
        const log = await m.ds.poll(m.group!.id, 0);
        m.seen = log.at(-1)!.seq;
        m.seqs.push(...log.map((x) => x.seq));
      }

      const latencies: number[] = [];
      let sent = 0;
      const started = performance.now();
      const receive = async (m: Client) => {
        const batch = await retrying(ds, () => m.ds.poll(m.group!.id, m.seen));
        for (const msg of batch) {
          m.seqs.push(msg.seq);
          m.seen = msg.seq;
          if (msg.sender === m.name) continue;
          const r = await m.group!.process(msg.message);
          if (r.kind === 'commit') await r.staged.merge();
          if (r.kind === 'application') m.texts.add(utf8(r.data));
        }
      };

      let crash: Promise<void> | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        if (round === ROUNDS / 2) {
          // Crash: SIGKILL while requests are in flight, then restart on the same database file.
          crash = (async () => {
            await new Promise((r) => setTimeout(r, 150));
            const exited = new Promise((r) => server.once('exit', r));
            server.kill('SIGKILL');
            await exited;
            server = startServer(port, db);
          })();
        }
        await Promise.all(
          groups.map(async (members, g) => {
            // Every tenth round one member per group commits (a self-update).
            if (round % 10 === 5) {
              const m = members[round % PER_GROUP]!;
              await receive(m);
              const { commit } = await m.group!.selfUpdate();
              await retrying(ds, () => m.ds.submit(m.group!.id, commit));
              await m.group!.mergePendingCommit();
            }
            for (const m of members) {
              await receive(m);
              const text = `g${g} r${round} ${m.name}`;
              const bytes = await m.group!.encrypt(text);
              const t0 = performance.now();
              await retrying(ds, () => m.ds.submit(m.group!.id, bytes));
              latencies.push(performance.now() - t0);
              sent++;
            }
          }),
        );
      }
      await crash;
      for (const m of everyone) await receive(m);
      const seconds = (performance.now() - started) / 1000;

      expect(sent).toBe(GROUPS * PER_GROUP * ROUNDS);
      for (const members of groups) {
        const total = members[0]!.seen;
        for (const m of members) {
          // Every message of the group, each once, in one order.
          expect(m.seqs, m.name).toEqual(Array.from({ length: total }, (_, i) => i + 1));
          // Every other member's text, each exactly once (texts are unique).
          expect(m.texts.size, m.name).toBe((PER_GROUP - 1) * ROUNDS);
        }
        expectInSync(members);
      }
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
      console.log(
        `ds load: ${sent} messages from ${everyone.length} clients in ${GROUPS} groups, ${seconds.toFixed(1)} s end to end ` +
          `(${(sent / seconds).toFixed(0)} msg/s including encryption and every member's decryption), ` +
          `submit latency p50 ${latencies[Math.floor(latencies.length / 2)]!.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (crash at round ${ROUNDS / 2})`,
      );
    } finally {
      server.kill('SIGKILL');
    }
  }, 600_000);
});
