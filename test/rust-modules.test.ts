/**
 * The Rust core's module structure (issue 21 item 1): one module per
 * protocol extension under `ext/`, a base (client, group, storage,
 * provider, codec …) that never names an extension, and no module cycle.
 * The scanner is test/rust-module-graph.ts (why not cargo-modules: there).
 */
import { describe, expect, it } from 'vitest';

import { baseToExtension, cycles, moduleGraph, readCrate } from './rust-module-graph.js';

const crate = readCrate(new URL('../crates/core/src', import.meta.url).pathname);

describe('Rust core modules', () => {
  const graph = moduleGraph(crate);

  it('sees the real dependencies (the scanner is not blind)', () => {
    expect(graph.get('group')).toContain('client');
    expect(graph.get('client')).toContain('hooks');
    expect(graph.get('ext::reinit')).toContain('group');
    expect(graph.get('ext')).toContain('ext::reinit');
    // An alias of the crate root resolves to the module under ext/.
    expect(graph.get('ext::paired::virtual_client')).toContain('ext::paired::paired_standard');
  });

  it('has no module cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('has no base module that uses an extension', () => {
    expect(baseToExtension(graph)).toEqual([]);
  });

  it('has one module per extension', () => {
    for (const m of ['ext::paired::virtual_client', 'ext::paired::paired_keys', 'ext::paired::paired_standard', 'ext::intents::leaf_operation_intent', 'ext::intents::leaf_association', 'ext::dmls', 'ext::reinit']) {
      expect(graph.has(m), m).toBe(true);
    }
  });

  it('would report a cycle and a base → extension use', () => {
    const bad = new Map([
      ['lib.rs', 'mod a; mod b; mod ext;\nuse ext::{x};'],
      ['a.rs', 'use crate::b::f;\nfn g() { crate::x::h(); }'],
      ['b.rs', 'use crate::{a::{g}, c};'],
      ['ext/mod.rs', 'pub mod x;'],
      ['ext/x.rs', 'use super::super::a;'],
    ]);
    const badGraph = moduleGraph(bad);
    expect(cycles(badGraph)).toEqual([['a', 'b']]);
    expect(baseToExtension(badGraph)).toEqual(['a -> ext::x']);
  });
});
