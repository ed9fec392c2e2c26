#!/usr/bin/env node
// Drop the debugging custom sections ("name", "producers") from a wasm
// module, in place. They hold function names for stack traces and
// profiles, about an eighth of the module, and are never read at run
// time. wasm-opt --strip-debug would do this, but the Debian binaryen
// these machines have is too old for wasm-bindgen's output (see
// build-wasm.sh), so the sections are removed here by walking the
// module's section list (wasm binary format §5.5).
import { readFileSync, writeFileSync } from 'node:fs';

const DROPPED = new Set(['name', 'producers']);
const file = process.argv[2];
if (!file) {
  console.error('usage: strip-wasm-names.js FILE.wasm');
  process.exit(2);
}
const bytes = readFileSync(file);
const MAGIC_AND_VERSION = 8;
if (bytes.length < MAGIC_AND_VERSION || bytes.readUInt32LE(0) !== 0x6d736100) {
  console.error(`${file}: not a wasm module`);
  process.exit(1);
}

function readU32Leb(at) {
  let value = 0;
  let shift = 0;
  for (let pos = at; pos < bytes.length && shift < 35; pos++, shift += 7) {
    value |= (bytes[pos] & 0x7f) << shift;
    if ((bytes[pos] & 0x80) === 0) return { value: value >>> 0, next: pos + 1 };
  }
  throw new Error(`${file}: malformed LEB128 at byte ${at}`);
}

const kept = [bytes.subarray(0, MAGIC_AND_VERSION)];
let dropped = 0;
for (let pos = MAGIC_AND_VERSION; pos < bytes.length; ) {
  const id = bytes[pos];
  const size = readU32Leb(pos + 1);
  const end = size.next + size.value;
  if (end > bytes.length) throw new Error(`${file}: section at byte ${pos} runs past the end`);
  let name;
  if (id === 0) {
    const length = readU32Leb(size.next);
    name = bytes.subarray(length.next, length.next + length.value).toString('utf8');
  }
  if (name !== undefined && DROPPED.has(name)) dropped += end - pos;
  else kept.push(bytes.subarray(pos, end));
  pos = end;
}
writeFileSync(file, Buffer.concat(kept));
console.log(`strip-wasm-names: removed ${dropped} bytes of debugging sections from ${file}`);
