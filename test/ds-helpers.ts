/** Clients of the networked DS for tests: a fresh MLS identity registered at the DS's AS and logged in. */
import { expect } from 'vitest';
import { WebSocket } from 'ws';
import { DeliveryClient } from 'paired-mls/services';
import { utf8 } from 'paired-mls';
import { newMember, type Member } from './helpers.js';

export type DsPeer = Member & { ds: DeliveryClient; seen: number };

/** A member named `name`, registered (client id = user id = name) and logged in at `url`. */
export async function dsPeer(url: string, name: string): Promise<DsPeer> {
  const m = await newMember(name);
  const ds = await DeliveryClient.register(url, { clientId: name, client: m.client, identity: m.identity }, { WebSocket });
  return { ...m, ds, seen: 0 };
}

/** `p` processes its group's log up to now (what others sent); commits are merged. */
export async function catchUp(p: DsPeer): Promise<void> {
  for (const m of await p.ds.poll(p.group!.id, p.seen)) {
    p.seen = m.seq;
    if (m.sender === p.name) continue;
    const r = await p.group!.process(m.message);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/**
 * Everyone in `peers` processes the group's log up to now; then a message
 * from the first reaches all the others, and all share one epoch.
 */
export async function groupStillWorks(peers: DsPeer[], text: string): Promise<void> {
  const [sender, ...others] = peers;
  const gid = sender!.group!.id;
  for (const p of peers) await catchUp(p);
  sender!.seen = await sender!.ds.submit(gid, await sender!.group!.encrypt(text));
  for (const p of others) {
    const got = [];
    for (const m of await p.ds.poll(gid, p.seen)) {
      p.seen = m.seq;
      const r = await p.group!.process(m.message);
      if (r.kind === 'application') got.push(utf8(r.data));
    }
    expect(got).toEqual([text]);
  }
  expect(new Set(peers.map((p) => p.group!.epoch)).size).toBe(1);
}
