/**
 * Every TypeScript or JavaScript block of README.md type-checks against the
 * package's declarations (strict), as written: each block is extracted,
 * preceded by declarations of the names it assumes (the groups, clients and
 * identities an app would already have, below, one entry per README
 * section), and compiled with `tsc`'s API, so a snippet that uses an
 * undefined name, a member a union does not have, or a method that does
 * not exist fails here. (The quick start is also run:
 * test/readme-quickstart.test.ts.) A new section with code needs an entry
 * in PRELUDES.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { readmeProgram } from './readme-compile.js';

/**
 * What each section's code assumes, as declarations only (types from the
 * package, never values made up here). Keyed by the `## ` heading.
 */
const PRELUDES: Record<string, string> = {
  'Quick start': '',
  'Paired MLS (hidden and standard mode)': `
declare const laptopClient: import('paired-mls').MlsClient;
declare const laptopIdentity: import('paired-mls').Identity;
declare const phoneClient: import('paired-mls').MlsClient;
declare const phoneIdentity: import('paired-mls').Identity;
declare const group: import('paired-mls').Group;
`,
  'ReInit (new ciphersuite, version or group id)': `
declare const client: import('paired-mls').MlsClient;
declare const group: import('paired-mls').Group;
declare const otherMembersSuite3KeyPackages: Uint8Array[];
`,
  'LeafOperationIntent and Distributed MLS': `
declare const client: import('paired-mls').MlsClient;
declare const identity: import('paired-mls').Identity;
declare const newIdentity: import('paired-mls').Identity;
declare const group: import('paired-mls').Group;
declare const otherMembersGroup: import('paired-mls').Group;
declare const receiverGroup: import('paired-mls').Group;
declare const phoneGroup: import('paired-mls').Group;
declare const deliveryService: import('paired-mls/services').DeliveryService;
declare const groupId: Uint8Array;
declare const groupInfo: Uint8Array;
declare const keyPackagesOfOthers: Uint8Array[];
declare const data: Uint8Array;
declare const bytes: Uint8Array;
`,
  'Delivery Service': '',
  'Threads (large groups)': '',
};

interface Snippet {
  section: string;
  /** README line of the block's first code line (1-based). */
  line: number;
  code: string;
}

/** The ```ts / ```js blocks of `readme`, with the `## ` section each is in. */
function snippets(readme: string): Snippet[] {
  const found: Snippet[] = [];
  const lines = readme.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.+)$/.exec(lines[i]!);
    if (heading) section = heading[1]!.trim();
    const fence = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    if (['ts', 'typescript', 'js', 'javascript', 'mjs'].includes(fence[1]!)) {
      found.push({ section, line: start + 1, code: lines.slice(start, end).join('\n') });
    }
    i = end;
  }
  return found;
}

/** The README's blocks and their type errors, each as "README.md:<line> (<section>): <message>". */
function typeErrors(readme: string, dir: string): { checked: Snippet[]; errors: string[]; unknownSections: string[] } {
  const checked = snippets(readme);
  const unknownSections = [...new Set(checked.map((s) => s.section).filter((s) => !(s in PRELUDES)))];
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = new Map<string, { snippet: Snippet; preludeLines: number }>();
  checked.forEach((snippet, n) => {
    const prelude = PRELUDES[snippet.section] ?? '';
    // Each block is its own module: names do not leak from one to the next.
    const file = resolve(dir, `snippet-${n}.ts`);
    writeFileSync(file, `${prelude}\n${snippet.code}\nexport {};\n`);
    files.set(file, { snippet, preludeLines: `${prelude}\n`.split('\n').length - 1 });
  });
  const program = readmeProgram([...files.keys()]);
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const entry = d.file && files.get(resolve(d.file.fileName));
    if (!entry || d.start === undefined) return `${d.file?.fileName ?? '(no file)'}: ${message}`;
    const { line } = d.file!.getLineAndCharacterOfPosition(d.start);
    const where = line < entry.preludeLines ? 'prelude' : `README.md:${entry.snippet.line + line - entry.preludeLines}`;
    return `${where} (${entry.snippet.section}): ${message}`;
  });
  return { checked, errors, unknownSections };
}

describe('README code', () => {
  it('every TypeScript/JavaScript block type-checks against the package', () => {
    const readme = readFileSync('README.md', 'utf8');
    const { checked, errors, unknownSections } = typeErrors(readme, join('.cache', 'readme-snippets'));
    // The sections the blocks are in (a block in a section not listed needs its declarations first).
    expect(unknownSections, 'README sections with code but no entry in PRELUDES').toEqual([]);
    expect(new Set(checked.map((s) => s.section))).toEqual(new Set(Object.keys(PRELUDES)));
    expect(errors).toEqual([]);
  }, 60_000);
});
