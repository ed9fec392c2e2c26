/**
 * Bytes and arrays handed to the core are copied into wasm by a length that
 * is read once and cannot be lied about (docs/ENGINE.md G1). wasm-bindgen's
 * glue read `arg.length` to size the copy and again as the length Rust
 * reads: a Uint8Array with an own `length` of 4096 made Rust read 4,088
 * bytes of uninitialised wasm heap past the 8 copied, and `encrypt` sent
 * them, encrypted, to the whole group (a 4,242-byte ciphertext). The
 * receiver's plaintext is the attack's measure: it must be the real bytes.
 */
import { describe, expect, it } from 'vitest';
import { MlsError, bytesEqual } from 'paired-mls';
import { newMember, stillWorks } from './helpers.js';

async function pair() {
  const [alice, bob] = await Promise.all([newMember('alice'), newMember('bob')]);
  alice.group = await alice.client.createGroup(alice.identity);
  const [kp] = await bob.client.createKeyPackages(bob.identity);
  const { welcome } = await alice.group.commit({ add: [kp!] });
  await alice.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome(welcome!);
  return { alice, bob };
}

/** What bob reads of what alice encrypts from `plaintext`, and the ciphertext's size. */
async function sentAndRead(plaintext: Uint8Array, { alice, bob }: Awaited<ReturnType<typeof pair>>) {
  const sent = await alice.group!.encrypt(plaintext);
  const read = await bob.group!.process(sent);
  if (read.kind !== 'application') throw new Error(`expected an application message, got ${read.kind}`);
  return { size: sent.length, data: read.data };
}

describe('the length of bytes handed to the core (G1)', () => {
  it('a Uint8Array claiming a longer or shorter length than it has is copied by its real length: no heap goes out, nothing past it is read', async () => {
    const members = await pair();
    const real = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const honest = await sentAndRead(real.slice(), members);
    expect(bytesEqual(honest.data, real)).toBe(true);
    for (const claimed of [4096, 4, 0]) {
      const liar = Object.defineProperty(real.slice(), 'length', { value: claimed });
      const { size, data } = await sentAndRead(liar, members);
      // Before: 4096 sent 4,088 bytes of heap (a 4,242-byte ciphertext); 4 sent half; 0 sent nothing.
      expect({ size, data: [...data] }).toEqual({ size: honest.size, data: [...real] });
    }
  });

  it('an array-like whose length grows between reads is copied as one reading of it: nothing is written past the copy, nothing of the heap read', async () => {
    const members = await pair();
    let reads = 0;
    // Answers 8 to the first read of its length and 4096 after. The glue sized the allocation by the first read and
    // copied by the second: 4,088 bytes written past the allocation, over whatever the heap held there.
    const shifty = new Proxy([9, 8, 7, 6, 5, 4, 3, 2], { get: (t, k) => (k === 'length' ? (reads++ === 0 ? 8 : 4096) : Reflect.get(t, k)) });
    const { data } = await sentAndRead(shifty as unknown as Uint8Array, members);
    // Copied once, as iterating it gives: its eight values, then holes (zero) up to the length it answered.
    expect(data.length).toBe(4096);
    expect([...data.subarray(0, 8)]).toEqual([9, 8, 7, 6, 5, 4, 3, 2]);
    expect(data.subarray(8).every((b) => b === 0)).toBe(true);
    // The honest members go on, the heap intact.
    await stillWorks([members.alice, members.bob]);
  });

  it('an array of KeyPackages claiming 2^30 + 1 or 2^29 elements, a 2 GiB Uint8Array and a label that is no string are refused INVALID_ARGUMENT before any copy; the members go on', async () => {
    const members = await pair();
    const { alice } = members;
    const refusal = (call: () => unknown) => {
      try {
        call();
      } catch (e) {
        expect(e).toBeInstanceOf(MlsError);
        return { code: (e as MlsError).code, message: (e as MlsError).message };
      }
      throw new Error('not refused');
    };
    const tooLarge = { code: 'INVALID_ARGUMENT', message: 'an argument is too large for the wasm heap' };
    const none = new Uint8Array(4);
    let read = 0;
    const elements = (length: number) => new Proxy({ length }, { get: (t, k) => (k === 'length' ? t.length : (read++, none)) });
    // Before: 2^30 + 1 elements made a 4-byte allocation (the size wrapped at 2^32) that the copy wrote past, the
    // instance then aborted (WASM_POISONED); 2^29 asked malloc for 2 GiB, which aborts it.
    for (const length of [2 ** 30 + 1, 2 ** 29]) {
      expect(refusal(() => alice.client.verifyPublicCommit(none, none, none, elements(length) as unknown as Uint8Array[]))).toEqual(tooLarge);
    }
    expect(read).toBe(0);
    expect(refusal(() => alice.client.signWithLabel(alice.identity, 'label', new Uint8Array(2 ** 31)))).toEqual(tooLarge);
    // A label's `charCodeAt` wrote what it answered (-1: invalid UTF-8 in Rust's `&str`), its `length` sized malloc.
    const notStrings = [{ length: 3, charCodeAt: () => -1 }, { length: 2 ** 31, charCodeAt: () => 65 }, new String('label')];
    for (const label of notStrings) {
      expect(refusal(() => alice.client.signWithLabel(alice.identity, label as unknown as string, none))).toEqual({ code: 'INVALID_ARGUMENT', message: 'expected a string' });
    }
    await stillWorks([members.alice, members.bob]);
  });
});
