// Makes wasm-bindgen's glue copy array arguments into wasm by a length it
// reads once and cannot be lied to about. The generated `passArray8ToWasm0`
// (and its 16-, 32-bit and JsValue siblings) read `arg.length` twice: once
// to size the allocation and once as the length handed to Rust. A typed
// array with an own `length` property (or a Proxy whose getter answers
// differently each time) then made Rust read past what was copied: the
// uninitialised wasm heap (earlier operations' data, secrets among them)
// went into a ciphertext sent to the group, or past the allocation
// itself (docs/ENGINE.md G1). Now a genuine typed array is measured by
// the intrinsic `%TypedArray%.prototype.length` getter (its real length,
// no caller code runs) and anything else is first copied into a typed
// array of our own; a JsValue array's length is read once. A size over
// 2^31 - 1 bytes is refused before `malloc` (`wasmSize`): wasm-bindgen's
// malloc aborted the instance on it, and a JsValue array claiming 2^30 + 1
// elements wrapped to a 4-byte allocation its loop then wrote far past. A
// string argument must be a string: an object's `charCodeAt` wrote what it
// liked (invalid UTF-8 in a Rust `&str`) and its `length` sized malloc.
//
// Usage: node scripts/harden-glue.mjs pkg/paired_mls_core.js
// Fails (and leaves the file as it was) unless each function is found
// exactly once as wasm-bindgen writes it: a new wasm-bindgen that writes
// them otherwise must be looked at again, not passed over.
import { readFileSync, writeFileSync } from 'node:fs';

const [gluePath] = process.argv.slice(2);
if (!gluePath) throw new Error('usage: harden-glue.mjs <glue.js>');
let glue = readFileSync(gluePath, 'utf8');

const typed = (bits, type, view) => [
  `function passArray${bits}ToWasm0(arg, malloc) {
    const ptr = malloc(arg.length * ${bits / 8}, ${bits / 8}) >>> 0;
    ${view}().set(arg, ptr / ${bits / 8});
    WASM_VECTOR_LEN = arg.length;
    return ptr;
}`,
  `function passArray${bits}ToWasm0(arg, malloc) {
    let len = typedLength(arg);
    if (len < 0) {
        arg = new ${type}(arg);
        len = arg.length;
    }
    const ptr = malloc(wasmSize(len * ${bits / 8}), ${bits / 8}) >>> 0;
    ${view}().set(arg, ptr / ${bits / 8});
    WASM_VECTOR_LEN = len;
    return ptr;
}`,
];

const replacements = [
  typed(8, 'Uint8Array', 'getUint8ArrayMemory0'),
  typed(16, 'Uint16Array', 'getUint16ArrayMemory0'),
  typed(32, 'Uint32Array', 'getUint32ArrayMemory0'),
  [
    `function passArrayJsValueToWasm0(array, malloc) {
    const ptr = malloc(array.length * 4, 4) >>> 0;
    for (let i = 0; i < array.length; i++) {`,
    `function passArrayJsValueToWasm0(array, malloc) {
    const len = array.length >>> 0;
    const ptr = malloc(wasmSize(len * 4), 4) >>> 0;
    for (let i = 0; i < len; i++) {`,
  ],
  [
    `    WASM_VECTOR_LEN = array.length;
    return ptr;
}`,
    `    WASM_VECTOR_LEN = len;
    return ptr;
}`,
  ],
  [
    `    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;`,
    `    if (typeof arg !== 'string') throw invalidArgument('expected a string');
    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;`,
  ],
];

const helper = `
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'length').get;
/** The real length of a typed array (the intrinsic getter: an own \`length\` or a Proxy does not count); -1 for anything else. */
function typedLength(arg) {
    try {
        return typedArrayLength.call(arg);
    } catch {
        return -1;
    }
}
/** An error the client reports as INVALID_ARGUMENT (ts/mls/errors.ts reads its \`code\`). */
function invalidArgument(message) {
    return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}
/** \`bytes\`, if wasm-bindgen's malloc can be asked for it (over 2^31 - 1 it aborted the instance). */
function wasmSize(bytes) {
    if (bytes > 0x7fffffff) throw invalidArgument('an argument is too large for the wasm heap');
    return bytes;
}
`;

for (const [from, to] of replacements) {
  const at = glue.indexOf(from);
  if (at < 0 || glue.indexOf(from, at + 1) >= 0) throw new Error(`harden-glue: expected exactly one of:\n${from}`);
  glue = glue.slice(0, at) + to + glue.slice(at + from.length);
}
// A pass function this script does not know (a new argument type) would go in unhardened.
const known = ['passArray8ToWasm0', 'passArray16ToWasm0', 'passArray32ToWasm0', 'passArrayJsValueToWasm0', 'passStringToWasm0'];
const unknown = [...glue.matchAll(/function (pass\w*ToWasm0)\(/g)].map((m) => m[1]).filter((name) => !known.includes(name));
if (unknown.length > 0) throw new Error(`harden-glue: not hardened: ${unknown.join(', ')}`);
const anchor = '\nfunction passArray8ToWasm0(';
glue = glue.replace(anchor, `${helper}${anchor}`);
writeFileSync(gluePath, glue);
