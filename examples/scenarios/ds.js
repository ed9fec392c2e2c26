// `npm run demo -- ds`: clients talking through a real Delivery Service
// process on loopback (scripts/ds.js, SQLite file): each client registers
// its MLS signature key at the DS's AS and logs in (challenge signed with
// that key); KeyPackages, a group, messages over HTTP and a WebSocket
// stream, an outsider refused, a commit race decided by the DS, and a
// restart of the server that loses nothing (sessions included).
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { MlsClient, utf8 } from 'paired-mls';
import { DeliveryClient, DsError } from 'paired-mls/services';

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
  const url = `http://127.0.0.1:${PORT}`;
  const probe = new DeliveryClient(url);
  try {
    await healthy(probe);
    log(`1. DS server process on ${url} (SQLite ${DB}); GET /healthz = ok`);
    const people = {};
    for (const name of ['alice', 'bob', 'carol']) {
      const client = await MlsClient.open();
      const identity = await client.createIdentity(name, 1);
      // Register the signature key for this client id at the DS's AS and log in.
      const ds = await DeliveryClient.register(url, { clientId: name, client, identity }, { WebSocket });
      await ds.uploadKeyPackages(await client.createKeyPackages(identity, { count: 2 }));
      people[name] = { name, client, identity, ds, group: undefined, seen: 0 };
    }
    const { alice, bob, carol } = people;
    log('   alice, bob and carol registered their signature keys at the AS and logged in (challenge signed with that key -> session)');
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const kps = await alice.ds.fetchKeyPackages(['bob', 'carol']);
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: ['bob', 'carol'], groupInfo: add.groupInfo });
    await alice.ds.ackKeyPackages(['bob', 'carol']);
    await alice.group.mergePendingCommit();
    for (const p of [bob, carol]) {
      const [w] = await p.ds.welcomes();
      p.group = await p.client.joinFromWelcome(w.welcome);
      await p.ds.ackWelcomes([w.id]);
      p.seen = alice.seen;
    }
    log('2. alice fetched one KeyPackage each for bob and carol (leased to her, deleted on her acknowledgement) and created the group; bob and carol took their Welcomes and acknowledged them');

    // An outsider: no session at all, then a session of her own.
    try {
      await probe.poll(alice.group.id, 0);
    } catch (err) {
      if (!(err instanceof DsError)) throw err;
      log(`   an anonymous request for the group's log: refused (${err.reason})`);
    }
    const mallory = await MlsClient.open();
    const malloryId = await mallory.createIdentity('mallory', 1);
    const malloryDs = await DeliveryClient.register(url, { clientId: 'mallory', client: mallory, identity: malloryId });
    try {
      await malloryDs.submit(alice.group.id, await alice.group.encrypt('forged?'));
    } catch (err) {
      if (!(err instanceof DsError)) throw err;
      log(`   mallory, logged in as herself, posting to the group: refused (${err.reason})`);
    }

    // carol listens on a WebSocket stream.
    const heard = [];
    const stop = carol.ds.stream(alice.group.id, carol.seen, async (m) => {
      carol.seen = m.seq;
      if (m.sender === 'carol') return;
      const r = await carol.group.process(m.message);
      if (r.kind === 'application') heard.push(`${m.sender}: ${utf8(r.data)}`);
      if (r.kind === 'commit') await r.staged.merge();
    });
    await alice.ds.submit(alice.group.id, await alice.group.encrypt('hello from alice'));
    await bob.ds.submit(alice.group.id, await bob.group.encrypt('hello from bob'));
    for (let i = 0; i < 50 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    log(`3. carol's WebSocket stream delivered: ${heard.join(' | ')}`);
    stop();

    // Commit race.
    const a = await alice.group.selfUpdate();
    const b = await bob.group.selfUpdate();
    await alice.ds.submit(alice.group.id, a.commit);
    await alice.group.mergePendingCommit();
    try {
      await bob.ds.submit(bob.group.id, b.commit);
    } catch (err) {
      if (!(err instanceof DsError)) throw err;
      log(`4. alice and bob committed for the same epoch; the DS took alice's and told bob (${err.reason}): "${err.message}"`);
      await bob.group.clearPendingCommit();
    }
    for (const p of [bob, carol]) {
      for (const m of await p.ds.poll(p.group.id, p.seen)) {
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
    await healthy(probe);
    const log2 = await carol.ds.poll(alice.group.id, 0);
    log(`5. the server was killed (SIGKILL) and restarted on the same database: carol's session still holds, and the group's log still holds ${log2.length} messages`);
  } finally {
    server.kill('SIGKILL');
  }
}
