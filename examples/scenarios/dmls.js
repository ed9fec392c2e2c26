// `npm run demo -- dmls [--profile multi-mls|distributed-mls]`: Distributed
// MLS with four participants and no central ordering. Each owns a send
// group; updates cross send groups as exporter PSKs; the transport
// shuffles, duplicates and delays everything.
import { MlsClient, toHex, utf8 } from 'paired-mls';
import { DMember } from 'paired-mls/dmls';

const names = ['ann', 'ben', 'cat', 'dan'];
const PROFILES = {
  'multi-mls': 'seed 003: exportPSK = MLS-Exporter("exportPSK", universe id, 32), exportPskId = MLS-Exporter("exportPskId", universe id, 32)',
  'distributed-mls': 'later draft, public implementations: MLS-Exporter("exporter_psk", psk_id, 32)',
};

function profileArg() {
  const args = process.argv.slice(3);
  const i = args.indexOf('--profile');
  const profile = i >= 0 ? args[i + 1] : 'multi-mls';
  if (!(profile in PROFILES)) throw new Error(`unknown profile ${JSON.stringify(profile)}; choose one of: ${Object.keys(PROFILES).join(', ')}`);
  return profile;
}

/** A seeded transport that reorders, duplicates and delays. */
function transport(seed) {
  let x = seed;
  const rand = (n) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
  const queue = [];
  return {
    stats: { sent: 0, duplicated: 0, delivered: 0 },
    send(from, messages, nodes) {
      for (const bytes of messages) {
        for (const to of nodes) {
          if (to.name === from) continue;
          this.stats.sent++;
          queue.push({ to, bytes });
          if (rand(5) === 0) {
            queue.push({ to, bytes });
            this.stats.duplicated++;
          }
        }
      }
    },
    async drain(nodes, onEvent) {
      while (queue.length > 0) {
        const [m] = queue.splice(rand(queue.length), 1);
        const events = await m.to.member.unprotect(m.bytes);
        this.stats.delivered++;
        for (const e of events) {
          if (e.type === 'rejoinRequest') this.send(m.to.name, e.messages, nodes);
          onEvent(m.to, e);
        }
      }
    },
  };
}

export async function run(log) {
  const profile = profileArg();
  const people = [];
  for (const name of names) {
    const client = await MlsClient.open();
    people.push({ name, client, identity: await client.createIdentity(name, 1) });
  }
  const keyPackagesFor = (p) => Promise.all(people.filter((o) => o !== p).map((o) => o.client.createKeyPackage(o.identity)));
  const net = transport(0xd31a5);
  const [founder, ...rest] = people;
  // ann founds the universe (seed 003 §6.1): her send group's id is its identifier, the profile is fixed here.
  const founded = await DMember.found(founder.client, founder.identity, await keyPackagesFor(founder), { profile });
  const { universe } = founded;
  const [welcome, definition] = founded.messages;
  const nodes = [{ name: founder.name, member: founded.member, inbox: [] }];
  const inits = [];
  for (const p of rest) {
    const { member, messages } = await DMember.joinUniverse(p.client, p.identity, welcome, definition, await keyPackagesFor(p));
    nodes.push({ name: p.name, member, inbox: [] });
    inits.push([p.name, messages]);
  }
  for (const [from, messages] of inits) net.send(from, messages, nodes);
  const onEvent = (node, e) => {
    if (e.type === 'data') node.inbox.push(`${utf8(e.sender)}: ${utf8(e.data)}`);
  };
  await net.drain(nodes, onEvent);
  log(`profile: ${universe.profile} — ${PROFILES[universe.profile]}`);
  log(`1. INIT: ann founds universe ${toHex(universe.id).slice(0, 8)}… (= her send group id), the others join from her definition message;`);
  log(`   ${names.length} send groups, each owner at leaf 0 with everyone else`);

  for (const [i, node] of nodes.entries()) {
    net.send(node.name, await node.member.protect(new TextEncoder().encode(`hello #${i}`)), nodes);
  }
  net.send('ann', await nodes[0].member.update(), nodes);
  net.send('cat', await nodes[2].member.update(), nodes);
  await net.drain(nodes, onEvent);
  log('2. everyone PROTECTs; ann and cat UPDATE (commits with fresh randomness in their own send groups)');
  for (const node of nodes) {
    const imports = node.member.pendingImports().length;
    log(`   ${node.name}: read ${node.inbox.length} messages, ${imports} pending import(s)`);
  }

  for (const node of nodes) net.send(node.name, await node.member.protect(new TextEncoder().encode(`after the updates (${node.name})`)), nodes);
  await net.drain(nodes, onEvent);
  log('3. the next PROTECT first COMMITs the PSK imports (partial commits, PSK id = uint64(epoch) || group_id)');
  for (const node of nodes) {
    const imported = [...node.member.importedEpochs()].map(([g, e]) => `${nodes.find((n) => toHex(n.member.sendGroup.id) === g)?.name}@${e}`);
    log(`   ${node.name}: imported ${imported.join(', ') || '—'}; last message: "${node.inbox.at(-1)}"`);
  }
  log(`4. transport: ${net.stats.sent} sends, ${net.stats.duplicated} duplicated, ${net.stats.delivered} deliveries in random order; duplicates dropped, early messages buffered`);
}
