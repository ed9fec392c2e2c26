// A chat between browser tabs over the paired-mls Delivery Service.
// Open  /examples/browser-chat/?name=alice&ds=http://127.0.0.1:8080  in one
// tab and ?name=bob in another (same origin). Tabs find each other with a
// BroadcastChannel; everything else — KeyPackages, the Welcome, messages —
// goes through the DS, end-to-end encrypted with MLS. State lives in
// IndexedDB, so a reloaded tab continues where it was.
import { IndexedDbStorageAdapter, MlsClient, utf8 } from '../../dist/index.js';
import { DeliveryClient } from '../../dist/services.js';

const params = new URLSearchParams(location.search);
const name = params.get('name') ?? `guest-${Math.floor(Math.random() * 1000)}`;
const dsUrl = params.get('ds') ?? 'http://127.0.0.1:8080';
const channel = new BroadcastChannel('paired-mls-chat');
const $ = (id) => document.getElementById(id);

function show(text, cls = '') {
  const div = document.createElement('div');
  div.className = `msg ${cls}`;
  div.textContent = text;
  $('log').append(div);
  $('log').scrollTop = $('log').scrollHeight;
}

const client = await MlsClient.open({ storage: await IndexedDbStorageAdapter.open(`chat-${name}`) });
const known = client.identities()[0];
const identity = known ?? (await client.createIdentity(name, 1));
// A new tab registers its signature key at the DS's AS; a reloaded one logs in with it.
const account = { clientId: name, client, identity };
const ds = known ? await DeliveryClient.login(dsUrl, account) : await DeliveryClient.register(dsUrl, account);
let group = client.groupIds().length > 0 ? client.group(client.groupIds()[0]) : undefined;
let seen = Number(localStorage.getItem(`chat-seen-${name}`) ?? 0);
const setSeen = (s) => localStorage.setItem(`chat-seen-${name}`, String((seen = s)));
$('who').textContent = name;

function status() {
  $('state').textContent = group ? `epoch ${group.epoch}, ${group.members().length} members` : 'waiting for a room…';
}

channel.onmessage = async ({ data }) => {
  // The tab that owns the room adds whoever asks.
  if (data.type === 'join' && group && group.ownLeafIndex === 0) {
    const kps = await ds.fetchKeyPackages([data.name]);
    if (!kps.has(data.name)) return;
    const { commit, welcome } = await group.commit({ add: [...kps.values()] });
    setSeen(await ds.submit(group.id, commit, { welcome, added: [data.name] }));
    await ds.ackKeyPackages([data.name]);
    await group.mergePendingCommit();
    show(`${data.name} joined`, 'sys');
    status();
  }
  if (data.type === 'room' && !group) channel.postMessage({ type: 'join', name });
};

if (!group) {
  await ds.uploadKeyPackages([await client.createKeyPackage(identity)]);
  if (params.get('create') === '1') {
    group = await client.createGroup(identity);
    await ds.createGroup(group.id, { epoch: group.epoch });
    show('room created', 'sys');
  } else {
    channel.postMessage({ type: 'join', name });
  }
}
if (group && group.ownLeafIndex === 0) channel.postMessage({ type: 'room' });
status();

async function tick() {
  try {
    if (!group) {
      const [w] = await ds.welcomes();
      if (w) {
        group = await client.joinFromWelcome(w.welcome);
        await ds.ackWelcomes([w.id]);
        setSeen((await ds.poll(group.id, 0)).at(-1)?.seq ?? 0);
        show('joined the room', 'sys');
      }
    } else {
      for (const m of await ds.poll(group.id, seen)) {
        setSeen(m.seq);
        if (m.sender === name) continue;
        const r = await group.process(m.message);
        if (r.kind === 'application') show(`${m.sender}: ${utf8(r.data)}`);
        if (r.kind === 'commit') await r.staged.merge();
      }
    }
    status();
  } finally {
    setTimeout(tick, 400);
  }
}
tick();

$('form').onsubmit = async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !group) return;
  $('text').value = '';
  setSeen(await ds.submit(group.id, await group.encrypt(text)));
  show(`${name}: ${text}`, 'me');
};
window.chatReady = true;
