/**
 * SafeAAD has one codec, the engine's (openmls `SafeAad`, through
 * crates/core/src/safe_aad.rs): items strictly increasing by component id.
 * An unsorted or repeated item is refused on encoding with the engine's
 * reason, and bytes carrying them are not a SafeAAD when decoded — so a
 * standard-mode anchor commit whose AAD repeats the device-signature item
 * is refused as unsigned, and the group carries on.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TlsWriter, init, decodeSafeAad, encodeSafeAad, type SafeAadItem } from 'paired-mls';
import { DEVICE_SIGNATURE_COMPONENT } from 'paired-mls/paired';
import { expectInSync, mlsError } from './helpers.js';
import { pairedWorld } from './paired-helpers.js';

/** SafeAAD bytes written item by item, in the given order (what an attacker can send). */
const raw = (items: SafeAadItem[]) => new TlsWriter().list(items, (w, i) => w.u16(i.componentId).vector(i.data)).finish();
const item = (componentId: number, ...data: number[]): SafeAadItem => ({ componentId, data: new Uint8Array(data) });

describe('SafeAAD through the engine codec', () => {
  beforeAll(() => init());

  it('encodes sorted items in the draft wire format and decodes them back', () => {
    const items = [item(1, 0xaa), item(DEVICE_SIGNATURE_COMPONENT, 1, 2, 3)];
    const bytes = encodeSafeAad(items);
    expect(bytes).toEqual(raw(items));
    expect(bytes).toEqual(new Uint8Array([10, 0, 1, 1, 0xaa, 0xf1, 0xb2, 3, 1, 2, 3]));
    expect(decodeSafeAad(bytes)).toEqual(items);
    expect(encodeSafeAad([])).toEqual(new Uint8Array([0]));
  });

  it('refuses an unsorted item and a repeated item on encoding, with the engine reason', async () => {
    const unsorted = await mlsError(() => encodeSafeAad([item(9), item(2)]));
    expect([unsorted.code, unsorted.message]).toEqual(['INVALID_ARGUMENT', 'SafeAAD: SafeAAD items are not sorted by component id in increasing order']);
    const repeated = await mlsError(() => encodeSafeAad([item(DEVICE_SIGNATURE_COMPONENT, 1), item(DEVICE_SIGNATURE_COMPONENT, 2)]));
    expect([repeated.code, repeated.message]).toEqual(['INVALID_ARGUMENT', `SafeAAD: duplicate component id in SafeAAD: ${DEVICE_SIGNATURE_COMPONENT}`]);
  });

  it('does not read unsorted, repeated, truncated or trailing bytes as a SafeAAD', () => {
    expect(decodeSafeAad(raw([item(9), item(2)]))).toBeUndefined();
    expect(decodeSafeAad(raw([item(3, 1), item(3, 2)]))).toBeUndefined();
    const good = raw([item(1, 0xaa)]);
    expect(decodeSafeAad(good.subarray(0, good.length - 1))).toBeUndefined();
    expect(decodeSafeAad(new Uint8Array([...good, 0]))).toBeUndefined();
    expect(decodeSafeAad(new Uint8Array(0))).toBeUndefined();
  });

  it('an anchor commit whose AAD repeats the device-signature item is refused as unsigned; the group carries on', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    const bob = w.others[0]!;
    const anchor = w.a.group!;
    const signatureItem = { componentId: DEVICE_SIGNATURE_COMPONENT, data: new Uint8Array(100).fill(1) };
    const { commit } = await anchor.selfUpdate({ aad: raw([signatureItem, signatureItem]) });
    const err = await mlsError(() => bob.group!.process(commit));
    expect(err.code).toBe('DEVICE_SIGNATURE');
    expect(err.message).toBe('a handshake message from a standard-mode anchor carries no device signature');
    await anchor.clearPendingCommit();
    // Nothing changed at bob: a genuine paired update still applies, and both read each other.
    const update = await w.activeDevice.update(anchor);
    await anchor.mergePendingCommit();
    const seen = await bob.group!.process(update.commit);
    if (seen.kind !== 'commit') throw new Error(`expected a commit, got ${seen.kind}`);
    await seen.staged.merge();
    expectInSync([w.a, bob]);
  });
});
