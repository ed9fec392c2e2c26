// `npm run demo -- ds`: clients talking through a real Delivery Service
// process on loopback (scripts/ds.js, SQLite file): KeyPackages, a group,
// messages over HTTP and a WebSocket stream, a commit race decided by the
// DS, and a restart of the server that loses nothing.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { DeliveryClient, DsError, MlsClient, utf8 } from 'paired-mls';

const PORT = 18000 + Math.floor(Math.random() * 2000);
const DB = join(mkdtempSync(join(tmpdir(), 'paired-mls-demo-')), 'ds.sqlite');

function startServer() {
  return spawn(process.execPath, ['scripts/ds.js', '--port', String(PORT), '--db', DB], { stdio: 'ignore' });
}

async function healthy(ds) {
  for (let i = 0; i < 200; i++) {
    if (await ds.healthy()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the DS did not start');
}

export async function run(log) {
  let server = startServer();
  const ds = new DeliveryClient(`http://127.0.0.1:${PORT}`, { WebSocket });
  try {
    await healthy(ds);
    log(`1. DS server process on http://127.0.0.1:${PORT} (SQLite ${DB}); GET /healthz = ok`);
    const people = {};
    for (const name of ['alice', 'bob', 'carol']) {
      const client = await MlsClient.open();
      const identity = await client.createIdentity(name, 1);
      await ds.uploadKeyPackages(name, await client.createKeyPackages(identity, { count: 2 }));
      people[name] = { name, client, identity, group: undefined, seen: 0 };
    }
    const { alice, bob, carol } = people;
    alice.group = await alice.client.createGroup(alice.identity);
    await ds.createGroup(alice.group.id, 'alice', { epoch: alice.group.epoch });
    const kps = await ds.fetchKeyPackages(['bob', 'carol']);
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await ds.submit(alice.group.id, 'alice', add.commit, { welcome: add.welcome, added: ['bob', 'carol'], groupInfo: add.groupInfo });
    await alice.group.mergePendingCommit();
    for (const p of [bob, carol]) {
      p.group = await p.client.joinFromWelcome((await ds.welcomes(p.name))[0].welcome);
      p.seen = alice.seen;
    }
    log('2. alice fetched one KeyPackage each for bob and carol (handed out once) and created the group; Welcomes went to them only');

    // carol listens on a WebSocket stream.
    const heard = [];
    const stop = ds.stream('carol', alice.group.id, carol.seen, async (m) => {
      carol.seen = m.seq;
      if (m.sender === 'carol') return;
      const r = await carol.group.process(m.message);
      if (r.kind === 'application') heard.push(`${m.sender}: ${utf8(r.data)}`);
      if (r.kind === 'commit') await r.staged.merge();
    });
    await ds.submit(alice.group.id, 'alice', await alice.group.encrypt('hello from alice'));
    await ds.submit(alice.group.id, 'bob', await bob.group.encrypt('hello from bob'));
    for (let i = 0; i < 50 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    log(`3. carol's WebSocket stream delivered: ${heard.join(' | ')}`);
    stop();

    // Commit race.
    const a = await alice.group.selfUpdate();
    const b = await bob.group.selfUpdate();
    await ds.submit(alice.group.id, 'alice', a.commit);
    await alice.group.mergePendingCommit();
    try {
      await ds.submit(bob.group.id, 'bob', b.commit);
    } catch (err) {
      if (!(err instanceof DsError)) throw err;
      log(`4. alice and bob committed for the same epoch; the DS took alice's and told bob (${err.reason}): "${err.message}"`);
      await bob.group.clearPendingCommit();
    }
    for (const p of [bob, carol]) {
      for (const m of await ds.poll(p.name, p.group.id, p.seen)) {
        p.seen = m.seq;
        if (m.sender === p.name) continue;
        const r = await p.group.process(m.message);
        if (r.kind === 'commit') await r.staged.merge();
      }
    }
    log(`   everyone at epoch ${[alice, bob, carol].map((p) => p.group.epoch).join('/')}`);

    // Restart.
    server.kill('SIGKILL');
    server = startServer();
    await healthy(ds);
    const log2 = await ds.poll('carol', alice.group.id, 0);
    log(`5. the server was killed (SIGKILL) and restarted on the same database: the group's log still holds ${log2.length} messages`);
  } finally {
    server.kill('SIGKILL');
  }
}
