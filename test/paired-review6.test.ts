/**
 * Sixth review of the Paired MLS layer: an attacker's look at f323e9e (one
 * `PairedDevice` object per client) and 4d544da (`ceasePair` / `reenroll`
 * with `send`, docs/PROTOCOL.md §4.5, §4.9, §4.14). Attackers: the stolen
 * copy of the phone's state (§4.0), which still holds the anchor leaf in a
 * group whose cease lost at the DS; a DS that says "refused" of a commit it
 * took; and an application whose calls overlap (an object replaced, or the
 * pairing reset, while a `receive` / `applyNotify` of the live object runs).
 * Each test asserts the exact refusal and that the honest devices go on.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from 'paired-mls';
import { PairedDevice, type PairingMode, type SeedVault } from 'paired-mls/paired';
import { deliverCommit, expectInSync } from './helpers.js';
import { pairedWorld, refused, updateFollowed } from './paired-helpers.js';
import { wrapped } from './paired-ds-helpers.js';

const RUNNING = 'a call of this device (receive, applyNotify, propose) is still running: wait until it settled';

/**
 * `vault`, whose next derivation for `label` waits until `open()` (inside
 * `applyNotify`: `psk` before the step is processed, `proof` after, in its
 * open transaction): `inside` resolves once a call is held there.
 */
function heldVault(vault: SeedVault, label: 'psk' | 'proof') {
  let hold = false;
  let entered!: () => void;
  let open!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const gate = new Promise<void>((r) => (open = r));
  const held: SeedVault = {
    derive: async (l, context, length) => {
      if (hold && l === label) {
        hold = false;
        entered();
        await gate;
      }
      return vault.derive(l, context, length);
    },
  };
  return { held, inside, open, hold: () => (hold = true) };
}

describe.each(['hidden', 'standard'] as const)('Paired MLS review 6: the object replaced, or the pairing reset, while a call of it runs (%s mode)', (mode: PairingMode) => {
  it('open with another vault is refused while applyNotify runs (before: the new object read the counter mid-call, and refused the next update, counter); once it settled, it replaces and follows', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const vault = w.passiveDevice.vault!;
    const gate = heldVault(vault, 'psk');
    const phone = PairedDevice.open(w.p.client, gate.held);
    const u = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    gate.hold();
    const applying = phone.applyNotify(u);
    await gate.inside;
    const other = wrapped(vault);
    await refused(async () => PairedDevice.open(w.p.client, other), 'PAIRING_STATE', undefined, RUNNING);
    expect(PairedDevice.open(w.p.client, undefined)).toBe(phone);
    gate.open();
    expect((await applying).kind).toBe('update');
    const replacement = PairedDevice.open(w.p.client, other);
    expect(replacement.counter).toBe(w.activeDevice.counter);
    await updateFollowed(w.activeDevice, w.a, replacement, [bob]);
    expectInSync([w.a, w.p, bob]);
  });

  it('reset is refused while applyNotify runs (before: it resolved, but its deletion joined the call’s transaction and was rolled back with it, the Notify refused as forged); once it settled, reset forgets the pairing', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const gate = heldVault(w.passiveDevice.vault!, 'proof');
    const phone = PairedDevice.open(w.p.client, gate.held);
    const u = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    gate.hold();
    const applying = phone.applyNotify(u);
    await gate.inside;
    await refused(() => PairedDevice.reset(w.p.client), 'PAIRING_STATE', undefined, RUNNING);
    gate.open();
    expect((await applying).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
    await PairedDevice.reset(w.p.client);
    expect(w.p.client.record('paired-mls/pairing')).toBeUndefined();
    expect(w.p.client.groupIds().some((id) => bytesEqual(id, w.a.group!.id))).toBe(false);
    await refused(() => phone.receive(u.pairing[0]!), 'PAIRING_STATE', undefined, 'this PairedDevice was replaced on its client, or reset: use the one PairedDevice.open returns');
  });
});
