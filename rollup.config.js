// Bundles ts/ (and the wasm-bindgen glue in pkg/) into one ESM file per
// entry point, with bundled type declarations; the .wasm is copied next to
// them, where the glue's `new URL('paired_mls_core_bg.wasm',
// import.meta.url)` finds it.
import { copyFileSync, mkdirSync } from 'node:fs';
import terser from '@rollup/plugin-terser';
import typescript from '@rollup/plugin-typescript';
import { dts } from 'rollup-plugin-dts';

// The bundled declarations come out indented by four spaces per level;
// two read the same in an editor and pack ~0.4 KB smaller (the tarball
// limit of issue 24 is 800,000 bytes). Only leading indentation changes.
const halveDeclarationIndent = {
  name: 'halve-declaration-indent',
  renderChunk(code) {
    return { code: code.replace(/^(?: {4})+/gm, (indent) => ' '.repeat(indent.length / 2)), map: null };
  },
};

// The wasm core's `Client` class is internal (the @internal `mutate`,
// `read` and `writeOnce` hand it to the protocol layers, which are typed
// against pkg/ when built), yet its declaration was bundled with every
// method and, before, every doc comment copied from the Rust source: ~5 KB
// of the 800,000-byte tarball (issue 24). An app never calls it, so the
// package declares it opaque: its methods are `any` to a caller of those
// internal members. The glue's other declarations (result shapes the
// public API returns) keep their members and docs.
const opaqueCoreClient = {
  name: 'opaque-core-client',
  renderChunk(code) {
    if (!code.includes('\ndeclare class Client {')) return null;
    const opaque = 'declare class Client {\n  free(): void;\n  [Symbol.dispose](): void;\n  [method: string]: any;\n}';
    let out = code.replace(/^declare class Client \{[\s\S]*?^\}$/m, opaque);
    // The glue's types only its methods named (ReInitSpec, SuccessorCreated, ...) now name nothing: they go too, with
    // their doc comments, until every interface or type left is exported or named elsewhere in the chunk.
    const declaration = /(?:\/\*\*(?:(?!\*\/)[\s\S])*\*\/\n)?(?:interface (\w+) \{[\s\S]*?^\}\n|type (\w+) =[^;\n]*;\n)/gm;
    for (let changed = true; changed; ) {
      changed = false;
      out = out.replace(declaration, (block, a, b) => {
        const name = a ?? b;
        const uses = out.match(new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}(?![\\w$])`, 'g'))?.length ?? 0;
        if (uses > 1) return block;
        changed = true;
        return '';
      });
    }
    return { code: out, map: null };
  },
};

// A doc comment followed by another one before any declaration documents
// nothing: TypeScript shows only the last comment before a declaration.
// Those are the module comments of the files the declarations come from
// (how a worker pool wakes up, why a module exists), ~4 KB of the packed
// tarball. The comments of `@internal` members (calls between the
// library's own layers, not for apps) go too, ~0.5 KB. Both stay in the
// sources. test/entry-docs.test.ts checks that every export of the built
// declarations keeps its doc comment.
const dropDetachedDocs = {
  name: 'drop-detached-docs',
  renderChunk(code) {
    const detached = /\/\*\*(?:(?!\*\/)[\s\S])*\*\/\n\s*\n(?=\s*\/\*\*)/g;
    const internal = /[ \t]*\/\*\*(?:(?!\*\/)[\s\S])*?@internal(?:(?!\*\/)[\s\S])*\*\/\n/g;
    const out = code.replace(detached, '').replace(internal, '');
    return out === code ? null : { code: out, map: null };
  },
};

// A doc comment's lines need no leading ` * ` (TypeScript and editors read
// the text the same without it): ~0.6 KB of the packed tarball (issue 24's
// limit is 800,000 bytes). Only the declarations are rewritten; the sources
// keep the usual form. A line whose text itself starts with `*` keeps its
// prefix, so no text is lost.
const bareDocLines = {
  name: 'bare-doc-lines',
  renderChunk(code) {
    const out = code.replace(/\/\*\*[\s\S]*?\*\//g, (doc) => (doc.includes('\n') ? doc.replace(/\n[ \t]*\* ?(?!\*|\/)/g, '\n') : doc));
    return out === code ? null : { code: out, map: null };
  },
};

const copyWasm = {
  name: 'copy-wasm',
  writeBundle() {
    mkdirSync('dist', { recursive: true });
    copyFileSync('pkg/paired_mls_core_bg.wasm', 'dist/paired_mls_core_bg.wasm');
  },
};

// ts/mls widens two interfaces by declaration merging in another module
// (`declare module './group-host.js' { interface GroupClient extends
// MlsClient {} }`, so that group.ts need not import client.ts). In a bundled
// declaration chunk that relative specifier names no file; the merged
// interface lives in the same chunk, so the block is unwrapped into a plain
// same-file merge. An augmentation whose interface is in another chunk
// fails the build instead of silently losing its members.
const inlineAugmentations = {
  name: 'inline-augmentations',
  renderChunk(code) {
    const block = /^declare module '\.\/[^']+' \{\n([\s\S]*?)\n\}$/gm;
    if (!block.test(code)) return null;
    return {
      code: code.replace(block, (whole, body) => {
        for (const [, name] of body.matchAll(/^\s*interface (\w+)/gm)) {
          if (!new RegExp(`^(declare )?(interface|class) ${name}\\b`, 'm').test(code)) {
            this.error(`augmented interface ${name} is not declared in the same declaration chunk`);
          }
        }
        return body.replace(/^ {4}/gm, '');
      }),
      map: null,
    };
  },
};

// The package's entry points (package.json "exports"): the MLS core, one
// per protocol layer, and the Node-only server. They are built together so
// that code used by several entries (above all the wasm glue and the core's
// module state: one wasm instance, initialised once by `init()`) lands in
// shared chunks that every entry imports, never in copies. Chunks stay next
// to the entries, where the wasm glue looks for the .wasm file.
export const ENTRIES = {
  index: 'ts/index.ts',
  paired: 'ts/paired/index.ts',
  dmls: 'ts/dmls/index.ts',
  intents: 'ts/intents/index.ts',
  resilience: 'ts/resilience/index.ts',
  services: 'ts/services/index.ts',
  server: 'ts/server/index.ts',
};
// Optional peer dependencies of paired-mls/server, loaded at run time.
const external = [/^node:/, 'better-sqlite3', 'pg', 'ws'];

export default [
  {
    input: ENTRIES,
    // Source maps stay in dist/ for debugging here but are not in the
    // package (package.json "files"), so the bundles do not point at them.
    output: { dir: 'dist', format: 'es', sourcemap: 'hidden', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
    external,
    plugins: [
      typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist', noEmitOnError: true }),
      // Minified (class names kept: errors are told apart by them) so the
      // packed tarball, wasm included, stays under 1 MB gzip.
      terser({ keep_classnames: true, compress: { passes: 3 }, format: { comments: false } }),
      copyWasm,
    ],
  },
  {
    input: ENTRIES,
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: '[name]-[hash].d.ts' },
    external,
    plugins: [dts({ tsconfig: './tsconfig.json' }), inlineAugmentations, opaqueCoreClient, dropDetachedDocs, halveDeclarationIndent, bareDocLines],
    // inlineAugmentations resolves these (or fails the build).
    onwarn(warning, warn) {
      if (/augments names that the target chunk does not export unchanged/.test(warning.message)) return;
      warn(warning);
    },
  },
];
