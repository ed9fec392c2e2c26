// `npm run demo -- dmls`: Distributed MLS with four participants and no
// central ordering. Each owns a send group; updates cross send groups as
// exporter PSKs; the transport shuffles, duplicates and delays everything.
import { DMember, MlsClient, toHex, utf8 } from 'paired-mls';

const names = ['ann', 'ben', 'cat', 'dan'];
const universe = { id: crypto.getRandomValues(new Uint8Array(16)), exportLength: 32, ciphersuites: [1] };

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
  const people = [];
  for (const name of names) {
    const client = await MlsClient.open();
    people.push({ name, client, identity: await client.createIdentity(name, 1) });
  }
  const net = transport(0xd31a5);
  const nodes = [];
  const inits = [];
  for (const p of people) {
    const kps = await Promise.all(people.filter((o) => o !== p).map((o) => o.client.createKeyPackage(o.identity)));
    const { member, messages } = await DMember.init(p.client, p.identity, universe, kps);
    nodes.push({ name: p.name, member, inbox: [] });
    inits.push([p.name, messages]);
  }
  for (const [from, messages] of inits) net.send(from, messages, nodes);
  const onEvent = (node, e) => {
    if (e.type === 'data') node.inbox.push(`${utf8(e.sender)}: ${utf8(e.data)}`);
  };
  await net.drain(nodes, onEvent);
  log(`1. INIT: ${names.length} send groups, each owner at leaf 0 with everyone else (universe ${toHex(universe.id).slice(0, 8)}…)`);

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
  log('3. the next PROTECT first COMMITs the PSK imports (exporter "exporter-psk", id = uint64(epoch) || group_id)');
  for (const node of nodes) {
    const imported = [...node.member.importedEpochs()].map(([g, e]) => `${nodes.find((n) => toHex(n.member.sendGroup.id) === g)?.name}@${e}`);
    log(`   ${node.name}: imported ${imported.join(', ') || '—'}; last message: "${node.inbox.at(-1)}"`);
  }
  log(`4. transport: ${net.stats.sent} sends, ${net.stats.duplicated} duplicated, ${net.stats.delivered} deliveries in random order; duplicates dropped, early messages buffered`);
}
