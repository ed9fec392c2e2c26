/** Clients of the networked DS for tests: a fresh MLS identity registered at the DS's AS and logged in. */
import { WebSocket } from 'ws';
import { DeliveryClient } from 'paired-mls/services';
import { newMember, type Member } from './helpers.js';

export type DsPeer = Member & { ds: DeliveryClient; seen: number };

/** A member named `name`, registered (client id = user id = name) and logged in at `url`. */
export async function dsPeer(url: string, name: string): Promise<DsPeer> {
  const m = await newMember(name);
  const ds = await DeliveryClient.register(url, { clientId: name, client: m.client, identity: m.identity }, { WebSocket });
  return { ...m, ds, seen: 0 };
}
