/**
 * Every reference from the code to a section of docs/PROTOCOL.md names a
 * heading that exists. A reference is a `§` number written after
 * "PROTOCOL" (`PROTOCOL §4.12`, `docs/PROTOCOL.md §8.5`, also continued:
 * `§4.2, §4.6`, `§4.5–§4.6`, and across a comment's line break). A `§`
 * without that prefix cites something else (RFC 9420, a seed draft, the
 * MLS architecture) and is not checked here.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ROOTS = ['ts', 'crates', 'test', 'examples', 'README.md'];
const SOURCE = /\.(ts|js|mjs|rs|md)$/;

/** Section numbers of PROTOCOL.md's headings: "## 4. Paired MLS" → 4, "### 4.12 Standard mode" → 4.12. */
function headings(markdown: string): Set<string> {
  const numbers = new Set<string>();
  for (const line of markdown.split('\n')) {
    const m = /^#{2,6} (\d+(?:\.\d+)*)\.? /.exec(line);
    if (m) numbers.add(m[1]!);
  }
  return numbers;
}

// "PROTOCOL" (".md", a closing parenthesis, comment markers or a line break
// may follow), then a run of §-numbers joined by commas, "and", "or" or a dash.
const SEP = String.raw`(?:[\s*/!#]|,|–|-|\band\b|\bor\b)*`;
const REFERENCE = new RegExp(String.raw`PROTOCOL(?:\.md)?\)?${SEP}((?:§ ?\d+(?:\.\d+)*${SEP})+)`, 'g');

/** Every PROTOCOL reference in `text`, with its line number. */
export function protocolReferences(text: string): { section: string; line: number }[] {
  const found: { section: string; line: number }[] = [];
  for (const m of text.matchAll(REFERENCE)) {
    for (const s of m[1]!.matchAll(/§ ?(\d+(?:\.\d+)*)/g)) {
      const at = m.index! + m[0].indexOf(m[1]!) + s.index!;
      found.push({ section: s[1]!, line: text.slice(0, at).split('\n').length });
    }
  }
  return found;
}

describe('PROTOCOL.md references', () => {
  it('the scanner reads the forms the code uses, and not RFC or seed sections', () => {
    const sample = [
      '// docs/PROTOCOL.md §4.12 and PROTOCOL §8.4;',
      ' * Vault proofs (docs/PROTOCOL.md §4.2, §4.6): key healing (PROTOCOL.md §4.5–§4.6)',
      ' * verify (docs/PROTOCOL.md',
      ' * §8.5): RFC 9420 §12.4.3.2, seed §5 COMMIT, architecture §5.2.2',
    ].join('\n');
    expect(protocolReferences(sample)).toEqual([
      { section: '4.12', line: 1 },
      { section: '8.4', line: 1 },
      { section: '4.2', line: 2 },
      { section: '4.6', line: 2 },
      { section: '4.5', line: 2 },
      { section: '4.6', line: 2 },
      { section: '8.5', line: 4 },
    ]);
  });

  it('every reference in ts/, crates/, test/, examples/ and the README names an existing heading', () => {
    const sections = headings(readFileSync('docs/PROTOCOL.md', 'utf8'));
    expect(sections.has('4.12')).toBe(true);
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', ...ROOTS], { encoding: 'utf8' })
      .split('\n')
      .filter((f) => SOURCE.test(f) && !f.startsWith('test/vectors/mlswg/'));
    let checked = 0;
    const broken: string[] = [];
    for (const file of files) {
      for (const ref of protocolReferences(readFileSync(file, 'utf8'))) {
        checked++;
        if (!sections.has(ref.section)) broken.push(`${file}:${ref.line} PROTOCOL §${ref.section}`);
      }
    }
    expect(broken).toEqual([]);
    // The scan found the references (about 80 when this test was written).
    expect(checked).toBeGreaterThan(60);
  });
});
