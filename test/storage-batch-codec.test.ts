/**
 * The flat batch encoding (docs/PROTOCOL.md §2.3) as the IndexedDB log
 * stores it (§2.4): a batch with deletes and puts comes back as it went
 * in, and a stored record an attacker cut or changed is refused, never
 * read past its end or as another entry.
 */
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch, encodeEntries } from '../ts/mls/storage.js';
import { MlsError } from '../ts/mls/errors.js';

const bytes = (...xs: number[]) => Uint8Array.from(xs);

describe('storage batch codec', () => {
  const batch = { deletes: [bytes(9, 9), bytes()], puts: [[bytes(1), bytes(1, 2, 3)], [bytes(2, 2), bytes()]] as [Uint8Array, Uint8Array][] };

  it('round-trips deletes and puts, deletes first', () => {
    const encoded = encodeBatch(batch);
    expect(encoded[0]).toBe(0); // a delete leads
    expect(decodeBatch(encoded)).toEqual(batch);
    expect(decodeBatch(encodeEntries(batch.puts))).toEqual({ puts: batch.puts, deletes: [] });
    expect(decodeBatch(new Uint8Array())).toEqual({ puts: [], deletes: [] });
  });

  it('refuses every truncation and an unknown op with INTERNAL', () => {
    const encoded = encodeBatch(batch);
    // Cuts that fall between two entries decode to the entries before them; every other cut is refused.
    const view = new DataView(encoded.buffer);
    const boundaries = new Set<number>();
    for (let pos = 0; pos < encoded.length; boundaries.add(pos)) {
      const op = encoded[pos];
      pos += 5 + view.getUint32(pos + 1);
      if (op === 1) pos += 4 + view.getUint32(pos);
    }
    let refused = 0;
    for (let cut = 1; cut < encoded.length; cut++) {
      const part = encoded.slice(0, cut);
      if (boundaries.has(cut)) {
        expect(() => decodeBatch(part)).not.toThrow();
        continue;
      }
      expect(() => decodeBatch(part)).toThrow(MlsError);
      expect(() => decodeBatch(part)).toThrow('corrupt storage batch');
      refused++;
    }
    expect(refused).toBe(encoded.length - 1 - (boundaries.size - 1));
    const unknownOp = encoded.slice();
    unknownOp[0] = 2;
    expect(() => decodeBatch(unknownOp)).toThrow('corrupt storage batch');
  });

  it('refuses a length past the end without reading it', () => {
    const encoded = encodeBatch({ deletes: [], puts: [[bytes(1), bytes(7)]] });
    const longValue = encoded.slice();
    new DataView(longValue.buffer).setUint32(6, 0xffffffff); // the value's length
    try {
      decodeBatch(longValue);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MlsError);
      expect((err as MlsError).code).toBe('INTERNAL');
    }
  });
});
