/**
 * Fifth review of the Paired MLS layer: one `PairedDevice` object per
 * client (docs/PROTOCOL.md §4.5), against the attacker of
 * docs/PROTOCOL.md §4.0 (a stolen copy of a passive device's storage
 * without its vault, with its traffic), hostile members racing commits
 * and a hostile DS. Each test asserts the exact refusal and that the
 * honest devices keep working.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, type PairingMode } from 'paired-mls/paired';
import { deliverCommit } from './helpers.js';
import { pairedWorld, refused, updateFollowed } from './paired-helpers.js';

describe.each(['hidden', 'standard'] as const)('Paired MLS review 5: a second PairedDevice object on the same client (%s mode)', (mode: PairingMode) => {
  it('takes a derivation step the first has already taken: the partner refuses it (counter)', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const second = PairedDevice.open(w.a.client, w.activeDevice.vault);
    expect(second).not.toBe(w.activeDevice);
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, [bob]);
    // The second object still holds the counter it read when opened: its step injects
    // PSK(n) again, which the phone (at n + 1) does not have.
    const u = await second.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    await refused(() => w.passiveDevice.applyNotify(u), 'NOTIFY_REJECTED', 'counter');
    // And the pair is broken for good: the first object's next step comes from the pairing
    // epoch the refused step created, which the phone never reached.
    const next = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(next.commit, [bob]);
    await refused(() => w.passiveDevice.applyNotify(next), 'NOTIFY_REJECTED', 'out-of-order');
  });
});
