// Unsigned LEB128, the wasm binary format's integer encoding, for the build
// scripts that rewrite the module (short-import-names.mjs,
// reorder-functions.mjs). check-reorder.mjs keeps its own decoder on
// purpose: it checks reorder-functions.mjs and shares no code with it.

/** The unsigned LEB128 at `bytes[at]`: [its value, the offset after it]. Throws on a truncated one. */
export function readLeb(bytes, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) throw new Error('truncated LEB128');
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

/** `value` (a natural number) as unsigned LEB128, in the fewest bytes. */
export function leb(value) {
  const out = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return Buffer.from(out);
}
