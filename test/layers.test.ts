/**
 * The layer map of ts/ (docs/ARCHITECTURE.md, .dependency-cruiser.cjs):
 * dependency-cruiser finds no import cycle and no import that goes up a
 * layer; the same rules do catch a planted upward import and a planted
 * cycle (so the first test cannot pass by checking nothing); and the raw
 * core handle (`read` / `mutate`) is used inside ts/mls only.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { cruise, type ICruiseResult } from 'dependency-cruiser';

const root = join(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const config = require(join(root, '.dependency-cruiser.cjs'));

async function violations(cwd: string, tsConfig?: string): Promise<{ rule: string; from: string; to: string }[]> {
  const here = process.cwd();
  process.chdir(cwd);
  try {
    const options = { ...config.options, ruleSet: { forbidden: config.forbidden }, validate: true };
    if (!tsConfig) delete options.tsConfig;
    const { output } = await cruise(['ts'], options);
    return (output as ICruiseResult).summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
  } finally {
    process.chdir(here);
  }
}

describe('layers', () => {
  it('ts/ has no import cycle and no upward import', async () => {
    const result = await violations(root, 'tsconfig.json');
    expect(result).toEqual([]);
  });

  it('the rules catch an upward import, an import between protocol layers, a cycle and a type-only cycle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'layers-'));
    try {
      const file = (path: string, text: string) => {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text);
      };
      file('ts/mls/group.ts', "import { check } from '../paired/device-signature.js';\nexport const g = check;\n");
      file('ts/paired/device-signature.ts', "import { g } from '../mls/group.js';\nexport const check = () => g;\n");
      file('ts/dmls/dmember.ts', "import type { Intent } from '../intents/intent.js';\nexport type D = Intent;\n");
      file('ts/intents/intent.ts', 'export type Intent = number;\n');
      file('ts/services/ds.ts', "import { server } from '../server/http.js';\nexport const ds = server;\n");
      file('ts/server/http.ts', 'export const server = 1;\n');
      // A cycle closed only by `import type` counts too.
      file('ts/codec/reader.ts', "import type { Writer } from './writer.js';\nexport interface Reader { peer?: Writer }\n");
      file('ts/codec/writer.ts', "import type { Reader } from './reader.js';\nexport interface Writer { peer?: Reader }\n");
      const found = await violations(dir);
      const rules = (rule: string) => found.filter((v) => v.rule === rule).map((v) => `${v.from} -> ${v.to}`);
      expect(rules('mls-closed')).toEqual(['ts/mls/group.ts -> ts/paired/device-signature.ts']);
      expect(rules('protocol-on-mls')).toEqual(['ts/dmls/dmember.ts -> ts/intents/intent.ts']);
      expect(rules('services-below-server')).toEqual(['ts/services/ds.ts -> ts/server/http.ts']);
      expect(rules('no-circular').length).toBeGreaterThan(0);
      expect(rules('no-circular')).toEqual(['ts/codec/reader.ts -> ts/codec/writer.ts', 'ts/mls/group.ts -> ts/paired/device-signature.ts']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the raw core handle (read / mutate) is used inside ts/mls only', () => {
    const outside: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts')) {
          readFileSync(path, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              // A web stream's `reader.read()` (the DS client's reply body) is no core handle.
              if (/(?<!\breader)\.read\(|\.mutate\(/.test(line)) outside.push(`${relative(root, path)}:${i + 1}`);
            });
        }
      }
    };
    walk(join(root, 'ts'));
    expect(outside.filter((where) => !where.startsWith('ts/mls/'))).toEqual([]);
    expect(outside.length).toBeGreaterThan(0); // the scan sees the uses inside ts/mls
  });
});
