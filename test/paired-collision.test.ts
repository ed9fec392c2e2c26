/**
 * Both paired devices send on the shared anchor leaf. When they use the
 * same ratchet generation at once, the second message is a collision: the
 * Delivery Service (here a minimal arbiter with the DS rule "first message
 * per generation id wins") rejects it, and the loser resolves it by
 * processing the winner's message and sending again. Nothing is lost and
 * no key/nonce pair is reused (the virtual-clients reuse guard).
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex, utf8, type UnconfirmedMessage } from 'paired-mls';
import type { Member } from './helpers.js';
import { pairedWorld } from './paired-helpers.js';

/** The DS rule for virtual clients: the first message per generation id wins. */
class GenerationArbiter {
  readonly #seen = new Set<string>();
  submit(sent: UnconfirmedMessage): boolean {
    if (!sent.generationId) return true;
    const key = `${sent.epoch}/${toHex(sent.generationId)}`;
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    return true;
  }
}

async function read(m: Member, message: Uint8Array): Promise<string> {
  const r = await m.group!.process(message);
  if (r.kind !== 'application') throw new Error(`expected an application message, got ${r.kind}`);
  return utf8(r.data);
}

describe('Paired MLS: generation collisions between the two devices', () => {
  it('the loser processes the winner and re-sends; everyone reads both', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const ds = new GenerationArbiter();
    const laptop = await w.a.group!.encryptUnconfirmed('laptop says hi');
    const phone = await w.p.group!.encryptUnconfirmed('phone says hi');
    expect(laptop.generation).toBe(phone.generation);
    expect(laptop.generationId && phone.generationId && bytesEqual(laptop.generationId, phone.generationId)).toBe(true);
    // Same key generation, but not the same ciphertext (nonces differ through the reuse guard).
    expect(bytesEqual(laptop.message, phone.message)).toBe(false);

    expect(ds.submit(laptop)).toBe(true);
    await laptop.confirm();
    expect(ds.submit(phone)).toBe(false);

    // Without the arbiter a receiver would accept one and fail the other:
    // that is the collision the DS prevents.
    for (const m of w.others) expect(await read(m, laptop.message)).toBe('laptop says hi');
    // The loser reads the winner's message (its retained secret decrypts it) and sends again.
    expect(await read(w.p, laptop.message)).toBe('laptop says hi');
    const again = await w.p.group!.encryptUnconfirmed('phone says hi');
    expect(again.generation).toBeGreaterThan(laptop.generation);
    expect(ds.submit(again)).toBe(true);
    await again.confirm();
    for (const m of [w.a, ...w.others]) expect(await read(m, again.message)).toBe('phone says hi');

    // Traffic goes on normally afterwards, from both devices.
    for (const [from, to] of [
      [w.a, w.p],
      [w.p, w.a],
    ] as const) {
      const sent = await from.group!.encryptUnconfirmed(`from ${from.name}`);
      expect(ds.submit(sent)).toBe(true);
      await sent.confirm();
      for (const m of [to, ...w.others]) expect(await read(m, sent.message)).toBe(`from ${from.name}`);
    }
  });
});
