import { describe, expect, it } from 'vitest';
import { coreInfo, init } from 'paired-mls';

describe('package', () => {
  it('loads the wasm core and reports its ciphersuites', async () => {
    await init();
    const info = coreInfo();
    expect(info.ciphersuites).toEqual(expect.arrayContaining([1, 2, 3]));
    expect(info.version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
