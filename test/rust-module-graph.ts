/**
 * The module graph of a Rust crate, read from its sources: which module
 * names which through `crate::…`, `super::…`, a child's name, or an alias
 * the crate root imports (`use ext::{…}`). A small scanner rather than
 * cargo-modules: that tool builds rust-analyzer (minutes of compile on the
 * shared 2-core CI) for a graph that these path forms give exactly, since
 * the crate writes every in-crate reference in one of them. It does not
 * see macros that build paths or glob re-exports (the crate has neither).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export type ModuleGraph = Map<string, Set<string>>;

/** `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/lib.rs` → `` (the root). */
function moduleOf(file: string): string {
  const parts = file.replace(/\.rs$/, '').split('/');
  if (parts.at(-1) === 'mod' || (parts.length === 1 && parts[0] === 'lib')) parts.pop();
  return parts.join('::');
}

/** Source without comments and string literals (their text is no reference). */
function code(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\/\/.*$/gm, '');
}

/** `a::{b, c::{d, e}}` → [`a::b`, `a::c::d`, `a::c::e`]. */
function expandUse(tree: string): string[] {
  const open = tree.indexOf('{');
  if (open < 0) return [tree.replace(/\s+as\s+\w+$/, '').trim()];
  const prefix = tree.slice(0, open);
  const inner = tree.slice(open + 1, tree.lastIndexOf('}'));
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= inner.length; i++) {
    const ch = inner[i];
    if (ch === '{') depth++;
    if (ch === '}') depth--;
    if ((ch === ',' && depth === 0) || i === inner.length) {
      const item = inner.slice(start, i).trim();
      if (item) items.push(...expandUse(prefix + item));
      start = i + 1;
    }
  }
  return items;
}

/** Module graph of the crate whose sources are `files` (path relative to src/ → text). */
export function moduleGraph(files: Map<string, string>): ModuleGraph {
  const modules = new Set([...files.keys()].map(moduleOf));
  const children = (m: string) => [...modules].filter((c) => c !== m && c.startsWith(m ? `${m}::` : '') && !c.slice(m ? m.length + 2 : 0).includes('::'));
  // Names the crate root imports from its own modules (`use ext::{…}`).
  const aliases = new Map<string, string>();
  const root = code(files.get('lib.rs') ?? '');
  for (const [, tree] of root.matchAll(/^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+((?!crate|std|core|self|super)[a-z_][\w:{},\s]*);/gm)) {
    for (const path of expandUse(tree!)) {
      const name = path.split('::').at(-1)!;
      if (modules.has(path) && path.includes('::')) aliases.set(name, path);
    }
  }
  const resolve = (segments: string[]): string | undefined => {
    const first = segments[0];
    const full = first !== undefined && aliases.has(first) ? [...aliases.get(first)!.split('::'), ...segments.slice(1)] : segments;
    for (let n = full.length; n > 0; n--) {
      const candidate = full.slice(0, n).join('::');
      if (modules.has(candidate)) return candidate;
    }
    return undefined;
  };
  const graph: ModuleGraph = new Map();
  for (const [file, source] of files) {
    const from = moduleOf(file);
    const text = code(source);
    const targets = new Set<string>();
    const parent = from.split('::').slice(0, -1).join('::');
    // `crate::…` and `super::…`, including `use crate::{a, b::c}` groups.
    for (const [, head, rest] of text.matchAll(/\b(crate|super)::((?:\{[^;]*?\}(?=\s*;))|[\w:]+(?:::\{[^;]*?\}(?=\s*;))?)/g)) {
      const base = head === 'crate' ? '' : parent;
      for (const path of expandUse(rest!)) {
        const segments = [...(base ? base.split('::') : []), ...path.split('::').filter((s) => s && s !== '*')];
        const target = resolve(segments);
        if (target !== undefined && target !== from && target !== '') targets.add(target);
      }
    }
    // A child module named by its bare name (`reinit::ensure_active`).
    for (const child of children(from)) {
      const name = child.split('::').at(-1)!;
      if (new RegExp(`(?<![\\w:])${name}::`).test(text)) targets.add(child);
    }
    graph.set(from, targets);
  }
  return graph;
}

/** Every strongly connected component with more than one module (Tarjan). */
export function cycles(graph: ModuleGraph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Edges from a base module (not the root, not under `ext`) into `ext`. */
export function baseToExtension(graph: ModuleGraph, ext = 'ext'): string[] {
  const inExt = (m: string) => m === ext || m.startsWith(`${ext}::`);
  return [...graph].flatMap(([from, targets]) => (from === '' || inExt(from) ? [] : [...targets].filter(inExt).map((to) => `${from} -> ${to}`)));
}

/** The sources of a crate's src/ directory. */
export function readCrate(srcDir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.rs')) files.set(relative(srcDir, path).split(sep).join('/'), readFileSync(path, 'utf8'));
    }
  };
  walk(srcDir);
  return files;
}
