#!/usr/bin/env node
// Dalek patch D6 (docs/ENGINE.md): the constant-time inversion by divsteps
// (`FieldElement::invert` in wasm) must have no branch and no memory
// address that depends on the value. Rust written with masks is not
// enough: LLVM turned the final `d <- -d when f < 0` select of the first
// version into a `br_if` on the sign of f. This checks the compiled wasm.
//
// Usage: node scripts/check-invert-branches.mjs [file.wasm]
// Default: the newest divsteps_inverse test wasm that
// scripts/test-field-wasm.sh built (release, the wasm build's settings,
// function names kept). Also works on the core's wasm with names (cargo's
// output, or pkg/ from PAIRED_MLS_KEEP_NAMES=1; wasm-opt drops names
// unless given -g). Needs binaryen's wasm-dis (the toolchain's
// wasm-opt comes with it). Exits 1 on a finding, 2 if nothing was checked.
//
// Checked functions: names containing `divsteps` (the module) without
// `vartime`, and `FieldElement2625>::invert`, into which LLVM inlines
// divsteps::invert. A value is "data" when it comes from an i64 or vector
// operation, a load, a call or a local holding data at that point;
// counters and pointers are i32 arithmetic on constants and parameters
// (an i32 parameter is a pointer or a constant flag here). A finding is a
// br_if / if / br_table whose condition is data, or a load or store whose
// address is. `select` is allowed (V8 compiles it to a conditional move).
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function defaultWasm() {
  const target = process.env.CARGO_TARGET_DIR || join(root, 'target');
  const deps = join(target, 'wasm32-unknown-unknown/release/deps');
  const files = readdirSync(deps)
    .filter((f) => /^divsteps_inverse-[0-9a-f]+\.wasm$/.test(f))
    .map((f) => join(deps, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0) throw new Error(`no divsteps_inverse wasm in ${deps} (run scripts/test-field-wasm.sh)`);
  return files[0];
}

function wasmDis() {
  if (process.env.WASM_DIS) return process.env.WASM_DIS;
  if (process.env.WASM_OPT) return join(dirname(process.env.WASM_OPT), 'wasm-dis');
  return 'wasm-dis';
}

/** S-expression parse of one function's text: nodes are arrays of tokens/nodes. */
function parse(text) {
  const stack = [[]];
  const re = /\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+/g;
  for (const [token] of text.matchAll(re)) {
    if (token === '(') stack.push([]);
    else if (token === ')') {
      const node = stack.pop();
      stack[stack.length - 1].push(node);
    } else stack[stack.length - 1].push(token);
  }
  return stack[0][0];
}

function* walk(node) {
  if (!Array.isArray(node)) return;
  yield node;
  for (const child of node) yield* walk(child);
}

/**
 * Flow-sensitive taint of one function: walks the folded code in order
 * with the set of locals holding data (a local may be reused, so a set
 * from a constant clears it); at a block the states that branch to it are
 * joined, at a loop the entry and back edges until nothing changes.
 */
function checkFunction(func) {
  const entry = new Set();
  for (const child of func) {
    if (Array.isArray(child) && child[0] === 'local' && child[2] !== 'i32') entry.add(child[1]);
  }
  const findings = new Set();
  const labels = new Map(); // label -> joined state of branches to it
  const join = (a, b) => new Set([...a, ...b]);
  const same = (a, b) => a.size === b.size && [...a].every((x) => b.has(x));
  const show = (n) => JSON.stringify(n).slice(0, 160);
  const toLabel = (label, state) => {
    if (labels.has(label)) labels.set(label, join(labels.get(label), state));
  };
  // Returns [value is data, state after].
  function run(node, state) {
    if (!Array.isArray(node)) return [false, state];
    const head = node[0];
    const children = node.slice(1).filter((c) => Array.isArray(c));
    const label = typeof node[1] === 'string' && node[1].startsWith('$') ? node[1] : null;
    if (head === 'block' || head === 'then' || head === 'else') {
      if (label) labels.set(label, new Set());
      let s = state;
      for (const c of children) s = run(c, s)[1];
      if (label) s = join(s, labels.get(label));
      return [false, s];
    }
    if (head === 'loop') {
      let s = state;
      for (;;) {
        labels.set(label, new Set());
        let t = s;
        for (const c of children) t = run(c, t)[1];
        const back = join(s, labels.get(label));
        if (same(back, s)) return [false, t];
        s = back;
      }
    }
    if (head === 'if') {
      const cond = children.find((c) => !['result', 'then', 'else'].includes(c[0]));
      const [data, s] = run(cond, state);
      if (data) findings.add(`if on a value: ${show(cond)}`);
      const then = children.find((c) => c[0] === 'then');
      const other = children.find((c) => c[0] === 'else');
      const a = then ? run(then, s)[1] : s;
      const b = other ? run(other, s)[1] : s;
      return [false, join(a, b)];
    }
    if (head === 'local.get') return [state.has(node[1]), state];
    let data = /^(i64|v128|f32|f64|i8x16|i16x8|i32x4|i64x2)\./.test(head) || head === 'call' || /\.load/.test(head);
    let s = state;
    const results = [];
    for (const c of children) {
      const [d, t] = run(c, s);
      results.push(d);
      s = t;
      data ||= d;
    }
    if (head === 'local.set' || head === 'local.tee') {
      s = new Set(s);
      if (results[0]) s.add(node[1]);
      else s.delete(node[1]);
      return [results[0], s];
    }
    if (head === 'br_if' || head === 'br_table') {
      if (results[results.length - 1]) findings.add(`${head} on a value: ${show(children[children.length - 1])}`);
      for (const t of node.slice(1).filter((x) => typeof x === 'string' && x.startsWith('$'))) toLabel(t, s);
    }
    if (head === 'br') toLabel(node[1], s);
    if (/\.(load|store)/.test(head) && results[0]) findings.add(`${head} at an address from a value: ${show(children[0])}`);
    if (head === 'select') data = results.slice(0, 2).some((d) => d) || results[2];
    return [data, s];
  }
  let s = entry;
  for (const c of func.slice(1).filter((c) => Array.isArray(c) && !['param', 'local', 'result'].includes(c[0]))) s = run(c, s)[1];
  return [...findings];
}

const file = process.argv[2] || defaultWasm();
let wat;
try {
  wat = execFileSync(wasmDis(), [file], { maxBuffer: 1 << 30 }).toString();
} catch (error) {
  // No wasm-dis, no check: say why and fail (binaryen comes from
  // scripts/setup-toolchain.sh, step 3).
  console.error(`check-invert-branches: cannot run ${wasmDis()} (${error.code ?? error.message}); install binaryen (scripts/setup-toolchain.sh)`);
  process.exit(2);
}
const starts = [...wat.matchAll(/^ \(func \$(\S+)/gm)];
let checked = 0;
let failed = 0;
let sawInvert = false; // FieldElement::invert itself, not inlined away
for (let i = 0; i < starts.length; i++) {
  const name = starts[i][1];
  const wanted = (name.includes('divsteps') && !name.includes('vartime') && !name.includes('divsteps_inverse'))
    || /FieldElement2625(\$GT\$6invert17h|>::invert::h)/.test(name); // mangled or demangled
  if (!wanted) continue;
  sawInvert ||= /invert/.test(name);
  const text = wat.slice(starts[i].index, i + 1 < starts.length ? starts[i + 1].index : undefined);
  const findings = checkFunction(parse(text));
  checked++;
  console.log(`${findings.length === 0 ? 'ok  ' : 'FAIL'} ${name}`);
  for (const f of findings) console.log(`       ${f}`);
  if (findings.length > 0) failed++;
}
if (checked === 0 || !sawInvert) {
  // Names stripped, or invert inlined into its callers (compress, ...):
  // then this check would not see it; make it look there too.
  console.error(`FieldElement2625::invert not found in ${file} (names stripped, or inlined?)`);
  process.exit(2);
}
console.log(`${checked} functions checked in ${file}, ${failed} with a value-dependent branch or address`);
// The libtest form npm run test:engine counts (scripts/test-engine.mjs).
console.log(`test wasm_invert_has_no_value_dependent_branch ... ${failed > 0 ? 'FAILED' : 'ok'}`);
process.exit(failed > 0 ? 1 : 0);
