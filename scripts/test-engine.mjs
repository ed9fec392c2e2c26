#!/usr/bin/env node
// `npm run test:engine`: the vendored openmls (vendor/openmls) against all
// fifteen mlswg test-vector files in test/vectors/mlswg, plus the crate's
// own unit tests for the modules the project patches (docs/ENGINE.md).
//
// The crate's KAT modules read `test_vectors/<file>.json` (include_str! at
// compile time, or a runtime read relative to the crate). The published
// crate leaves that folder out, so this script builds it (git-ignored) as
// symlinks to test/vectors/mlswg; the vendored code is not modified.
// Then the integration test of the proposal-expansion changes, the unit
// tests of the vendored tls_codec (vendor/tls_codec), and the wasm tests
// of the field multiplication patched into vendor/curve25519-dalek
// (scripts/test-field-wasm.sh).
// Ends with `N passed, M failed` and exits non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const crate = join(root, 'vendor/openmls');
const vectors = join(root, 'test/vectors/mlswg');
const linkDir = join(crate, 'test_vectors');

// Ciphersuites of openmls_rust_crypto, the provider both the KATs and the
// shipped core use (crates/core/src/provider.rs: supportedCiphersuites()).
const ENGINE_SUITES = new Set([1, 2, 3]);

/** mlswg file -> the KAT test(s) that read it (libtest name filters). */
const KATS = {
  'crypto-basics.json': ['kat_crypto_basics::read_test_vectors'],
  'deserialization.json': ['kat_vl::read_test_vectors_deserialize'],
  'key-schedule.json': ['read_test_vectors_key_schedule'],
  'message-protection.json': ['read_test_vectors_mp'],
  'messages.json': ['read_test_vectors_messages'],
  'passive-client-handling-commit.json': ['passive_client::test_read_vectors'],
  'passive-client-welcome.json': ['passive_client::test_read_vectors'],
  'psk_secret.json': ['read_test_vectors_ps'],
  'secret-tree.json': ['read_test_vectors_st'],
  'transcript-hashes.json': ['read_test_vectors_transcript'],
  'tree-math.json': ['read_test_vectors_tm'],
  'tree-operations.json': ['read_test_vectors_tree_operations'],
  'tree-validation.json': ['read_test_vectors_tree_validation'],
  'treekem.json': ['read_test_vectors_treekem'],
  'welcome.json': ['kats::welcome::test_read_vectors'],
};

/**
 * Files the crate's test code names that are not mlswg files. They are
 * empty lists so the code compiles / opens them; no case is run from them.
 * - kat_encryption_openmls.json: openmls' own encryption vectors (test
 *   `read_test_vectors_encryption`, not run here); include_str! needs it.
 * - passive-client-random.json: openmls' own randomized passive-client
 *   scenario, read by the same test as the two mlswg passive-client files.
 */
const PLACEHOLDERS = ['kat_encryption_openmls.json', 'passive-client-random.json'];

/** Unit tests of the patched modules (docs/ENGINE.md). */
const UNIT_FILTERS = [
  'schedule::',
  'group::public_group::',
  'group::mls_group::tests_and_kats::tests::proposals',
  'group::mls_group::tests_and_kats::tests::reinit',
  'group::mls_group::tests_and_kats::tests::welcome_ratchet_tree',
  'treesync::tests_and_kats::tests::test_diff',
  'treesync::tree_hash_cache',
  'extensions::codec',
  'group::tests_and_kats::tests::proposal_validation',
  'group::tests_and_kats::tests::commit_validation',
  'group::tests_and_kats::tests::capabilities_check',
  'treesync::tests_and_kats::tests::test_update_path_batch',
  'treesync::tests_and_kats::tests::test_verify_signatures_ahead',
  'treesync::tests_and_kats::tests::test_derive_key_pairs_batch',
  'treesync::tests_and_kats::tests::test_leaves_by_index',
  'key_packages::',
  'messages::',
  'tree::sparse_vec',
  'tree::secret_tree::sparse_storage_tests',
  'tree::tests_and_kats::unit_tests',
  'group::mls_group::tests_and_kats::tests::confirmed_message',
  'group::mls_group::tests_and_kats::tests::stored_ahead',
  'group::mls_group::tests_and_kats::tests::own_ratchets',
  'group::mls_group::tests_and_kats::tests::unconfirmed_commit',
  'tree::dual_use_ratchet',
  'ciphersuite::secret::byte_serialization_tests',
  'test_utils::freed_memory',
  'utils::read_vector_tests',
];

const FEATURES = 'test-utils,virtual-clients-draft';

/**
 * Links and placeholders are left untouched when already right: the KATs
 * read them with include_str!, so rewriting one would make cargo rebuild
 * the crate's tests. A placeholder written afresh (every CI clone lacks
 * this git-ignored folder) takes this script's own time, which .ci/run
 * keeps while the script is unchanged (docs/DEVELOPING.md "CI"): its
 * content is this script's. cargo reads a link's target's time, a tracked
 * file's.
 */
function linkVectors() {
  mkdirSync(linkDir, { recursive: true });
  const wanted = new Map(Object.keys(KATS).map((name) => [name, join('../../../test/vectors/mlswg', name)]));
  for (const name of PLACEHOLDERS) wanted.set(name, null);
  for (const name of readdirSync(linkDir)) if (!wanted.has(name)) rmSync(join(linkDir, name));
  for (const [name, link] of wanted) {
    const path = join(linkDir, name);
    if (link === null) {
      if (!existsSync(path) || lstatSync(path).isSymbolicLink() || readFileSync(path, 'utf8') !== '[]\n') {
        rmSync(path, { force: true });
        writeFileSync(path, '[]\n');
        const { mtime } = statSync(fileURLToPath(import.meta.url));
        utimesSync(path, mtime, mtime);
      }
      continue;
    }
    if (!existsSync(join(vectors, name))) throw new Error(`missing test/vectors/mlswg/${name}`);
    if (isLinkTo(path, link)) continue;
    rmSync(path, { force: true });
    symlinkSync(link, path);
  }
}

function isLinkTo(path, link) {
  try {
    return lstatSync(path).isSymbolicLink() && readlinkSync(path) === link;
  } catch {
    return false;
  }
}

/** Cases per file: how many the engine's ciphersuites cover, how many it cannot run. */
function countCases(name) {
  const cases = JSON.parse(readFileSync(join(vectors, name), 'utf8'));
  let run = 0;
  const skipped = new Map();
  for (const c of cases) {
    const suite = c.cipher_suite;
    if (suite === undefined || ENGINE_SUITES.has(suite)) run++;
    else skipped.set(suite, (skipped.get(suite) ?? 0) + 1);
  }
  return { total: cases.length, run, skipped };
}

function cargo(args) {
  const env = { ...process.env, CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR ?? join(root, 'target/engine') };
  const r = spawnSync(process.env.CARGO ?? 'cargo', args, { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 });
  process.stderr.write(r.stderr.split('\n').filter((l) => /error|warning: unused/.test(l)).join('\n'));
  return { status: r.status, out: r.stdout };
}

/** `test NAME ... ok|FAILED|ignored` lines of libtest output (wasm-bindgen-test-runner: FAIL). */
function results(out) {
  const map = new Map();
  for (const m of out.matchAll(/^test (\S+) \.\.\. (ok|FAILED|FAIL|ignored)$/gm)) map.set(m[1], m[2] === 'FAIL' ? 'FAILED' : m[2]);
  return map;
}

const started = Date.now();
linkVectors();
const filters = [...new Set(Object.values(KATS).flat()), ...UNIT_FILTERS];
const base = ['test', '--manifest-path', join(crate, 'Cargo.toml'), '--features', FEATURES, '--lib'];
const run = cargo([...base, '--', ...filters]);
const tests = results(run.out);

let passed = 0;
let failed = 0;
console.log('mlswg vector files (test/vectors/mlswg) through the vendored openmls KATs:');
for (const [name, katFilters] of Object.entries(KATS)) {
  const { total, run: covered, skipped } = countCases(name);
  const matched = [...tests].filter(([t]) => katFilters.some((f) => t.includes(f)));
  const ok = matched.length > 0 && matched.every(([, s]) => s === 'ok');
  const why = [...skipped].map(([s, n]) => `${n} of suite ${s}`).join(', ');
  console.log(
    `  ${ok ? 'PASS' : 'FAIL'} ${name}: ${covered}/${total} cases checked by ${matched.length} test(s)` +
      (why ? `; not run: ${why} (ciphersuite not implemented by openmls_rust_crypto, which the engine ships)` : ''),
  );
  if (ok) passed += covered;
  else failed += Math.max(covered, 1);
}
const katNames = new Set([...tests.keys()].filter((t) => Object.values(KATS).flat().some((f) => t.includes(f))));
let unitPassed = 0;
let unitFailed = 0;
for (const [t, s] of tests) {
  if (katNames.has(t)) continue;
  if (s === 'ok') unitPassed++;
  else if (s === 'FAILED') {
    unitFailed++;
    console.log(`  FAIL unit ${t}`);
  }
}
console.log(`unit tests of the patched modules (${UNIT_FILTERS.join(' ')}): ${unitPassed} passed, ${unitFailed} failed`);
if (run.status !== 0 && failed + unitFailed === 0) {
  console.log(run.out.split('\n').slice(-40).join('\n'));
  failed++;
}
// The integration test of the proposal-expansion changes (6–8, 10, 29, 32, 35, 36 in
// docs/ENGINE.md): the crate's public API only, a `[[test]]` of its own.
/** Counts a cargo run's passed and failed tests (naming each failure after `label`); a failed run with no failed test counts as one, its output's tail shown. */
function tally(run, label) {
  let passed = 0;
  let failed = 0;
  for (const [t, s] of results(run.out)) {
    if (s === 'ok') passed++;
    else if (s === 'FAILED') {
      failed++;
      console.log(`  FAIL ${label} ${t}`);
    }
  }
  if (run.status !== 0 && failed === 0) {
    console.log(run.out.split('\n').slice(-40).join('\n'));
    failed++;
  }
  return { passed, failed };
}
const expansion = tally(cargo(['test', '--manifest-path', join(crate, 'Cargo.toml'), '--features', FEATURES, '--test', 'proposal_expansion']), 'proposal_expansion');
console.log(`integration test of the proposal-expansion changes 6–8, 10, 29, 32, 35–40, 42 (tests/proposal_expansion.rs): ${expansion.passed} passed, ${expansion.failed} failed`);
unitPassed += expansion.passed;
unitFailed += expansion.failed;
// The tls_codec changes 46-47 (docs/ENGINE.md): the vendored crate's own
// unit tests, with the features openmls turns on.
const codec = tally(cargo(['test', '--manifest-path', join(root, 'vendor/tls_codec/Cargo.toml'), '--features', 'derive,serde,mls', '--lib']), 'tls_codec');
console.log(`unit tests of vendor/tls_codec (changes 46-47 among them): ${codec.passed} passed, ${codec.failed} failed`);
unitPassed += codec.passed;
unitFailed += codec.failed;
// openmls_rust_crypto's R1 (docs/ENGINE.md): the vendored crate's own
// unit tests, with the feature the core turns on.
const rustCrypto = tally(cargo(['test', '--manifest-path', join(root, 'vendor/openmls_rust_crypto/Cargo.toml'), '--features', 'virtual-clients-draft', '--lib']), 'openmls_rust_crypto');
console.log(`unit tests of vendor/openmls_rust_crypto (R1 among them): ${rustCrypto.passed} passed, ${rustCrypto.failed} failed`);
unitPassed += rustCrypto.passed;
unitFailed += rustCrypto.failed;
// The dalek patches in vendor/curve25519-dalek
// (docs/ENGINE.md): their tests run in wasm, not natively.
const wasmEnv = { ...process.env, CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR ?? join(root, 'target/engine') };
const wasmRun = spawnSync('bash', [join(root, 'scripts/test-field-wasm.sh')], { cwd: root, env: wasmEnv, encoding: 'utf8', maxBuffer: 1 << 28 });
const wasmTests = results(wasmRun.stdout ?? '');
let wasmPassed = 0;
let wasmFailed = 0;
for (const [t, s] of wasmTests) {
  if (s === 'ok') wasmPassed++;
  else if (s === 'FAILED') {
    wasmFailed++;
    console.log(`  FAIL wasm ${t}`);
  }
}
if (wasmRun.status !== 0 && wasmFailed === 0) {
  console.log(`${wasmRun.stdout ?? ''}${wasmRun.stderr ?? ''}`.split('\n').slice(-40).join('\n'));
  wasmFailed++;
}
console.log(`wasm tests of the dalek patches D1–D7 (crates/field-wasm-test, and the D6 branch check): ${wasmPassed} passed, ${wasmFailed} failed`);
unitPassed += wasmPassed;
unitFailed += wasmFailed;
console.log(`took ${Math.round((Date.now() - started) / 1000)} s`);
console.log(`${passed + unitPassed} passed, ${failed + unitFailed} failed`);
process.exit(failed + unitFailed > 0 ? 1 : 0);
