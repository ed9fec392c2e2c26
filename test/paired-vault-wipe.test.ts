/**
 * What a device's seed vault hands out is wiped after its one use
 * (docs/PROTOCOL.md §4.2 "What stays inside the vault"): the PSK of each
 * step, the Accept confirmation, the proofs, and the vault half of each
 * anchor-key seed. The PROTOCOL audit found the proofs and the Accept
 * confirmation left in memory after use (made or checked): only the PSK and
 * the anchor-key half were wiped.
 */
import { describe, expect, it } from 'vitest';
import { generateSeed, PairedDevice, WebCryptoSeedVault, type SeedVault } from 'paired-mls/paired';
import { deliverCommit } from './helpers.js';
import { aliceAndBob, applyShareRand, device, updateFollowed } from './paired-helpers.js';

/** A vault that keeps every output it hands out, labelled, and a snapshot of its value, to look at them afterwards. */
class RecordingVault implements SeedVault {
  readonly outputs: { label: string; bytes: Uint8Array; value: string }[] = [];
  constructor(private readonly inner: SeedVault) {}
  async derive(label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
    const bytes = await this.inner.derive(label, context, length);
    this.outputs.push({ label, bytes, value: Buffer.from(bytes).toString('hex') });
    return bytes;
  }
  /** The labels of the outputs not all zero. */
  unwiped(): string[] {
    return this.outputs.filter((o) => o.bytes.some((b) => b !== 0)).map((o) => o.label);
  }
}

describe('Paired MLS: vault outputs are wiped after their one use', () => {
  it.each(['hidden', 'standard'] as const)('%s mode: pairing (proofs, the Accept confirmation), enrolment and paired updates (PSKs, anchor-key halves, Notify proofs), a RoleChange and a CeasePair leave no vault output in memory, on either device', async (mode) => {
    // Every copy the code makes with slice() (the codec's readers and writers
    // copy each field), to find one of a vault output left behind: the
    // review found the encoder's and decoder's copies of every proof.
    const copies: Uint8Array[] = [];
    const slice = Uint8Array.prototype.slice;
    Uint8Array.prototype.slice = function (this: Uint8Array, ...args: [number?, number?]) {
      const out = slice.apply(this, args);
      if (out.length === 32) copies.push(out);
      return out;
    };
    try {
      await pairAndCease(mode, copies);
    } finally {
      Uint8Array.prototype.slice = slice;
    }
  });
});

async function pairAndCease(mode: 'hidden' | 'standard', copies: Uint8Array[]): Promise<void> {
  {
    const seed = generateSeed();
    const [laptopVault, phoneVault] = await Promise.all([0, 1].map(async () => new RecordingVault(await WebCryptoSeedVault.import(seed.slice()))));
    seed.fill(0);
    const { a, bob } = await aliceAndBob();
    const p = await device('alice-phone');
    const active = await PairedDevice.initiate(a.client, a.identity, { vault: laptopVault, mode });
    const { initPairing, shareRand } = await active.invite(await PairedDevice.createKeyPackage(p.client, p.identity));
    const passive = await PairedDevice.join(p.client, initPairing, { vault: phoneVault });
    const applied = await applyShareRand(passive, shareRand);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });
    const enrolled = await active.enroll(a.group!);
    await deliverCommit(enrolled.commit, [bob]);
    expect((await passive.applyNotify(enrolled)).kind).toBe('enroll');
    await updateFollowed(active, a, passive, [bob]);
    // A hand-over and back: RoleChange proofs made and checked on both sides.
    expect((await passive.receive(await active.handOver())).type).toBe('roleChanged');
    expect((await active.receive(await passive.handOver())).type).toBe('roleChanged');
    const cease = await active.ceasePair('rekey');
    expect(await passive.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    // Every kind of output was handed out, and none is left.
    const labels = (v: RecordingVault) => [...new Set(v.outputs.map((o) => o.label))].sort();
    expect(labels(laptopVault).length).toBeGreaterThanOrEqual(4);
    expect(labels(laptopVault)).toContain('accept');
    expect(labels(phoneVault)).toContain('accept');
    expect(laptopVault.unwiped()).toEqual([]);
    expect(phoneVault.unwiped()).toEqual([]);
    const outputs = new Map([...laptopVault.outputs, ...phoneVault.outputs].map((o) => [o.value, o.label]));
    const left = copies.map((c) => outputs.get(Buffer.from(c).toString('hex'))).filter((label) => label !== undefined);
    expect(left).toEqual([]);
  }
}
