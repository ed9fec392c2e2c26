/**
 * mlswg `messages.json`: every MLSMessage-typed field decodes to the right
 * wire format and encodes back to the same bytes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, init, inspectMessage, toHex } from 'paired-mls';

await init();
const cases = JSON.parse(readFileSync(new URL('./vectors/mlswg/messages.json', import.meta.url), 'utf8')) as Record<string, string>[];

const MLS_MESSAGE_FIELDS = {
  mls_welcome: 'welcome',
  mls_group_info: 'group_info',
  mls_key_package: 'key_package',
  public_message_application: 'public',
  public_message_proposal: 'public',
  public_message_commit: 'public',
  private_message: 'private',
} as const;

describe('messages.json', () => {
  it.each(Object.entries(MLS_MESSAGE_FIELDS))('%s round-trips in all %#… cases', (field, wireFormat) => {
    let checked = 0;
    for (const c of cases) {
      const hex = c[field];
      if (!hex) continue;
      const info = inspectMessage(fromHex(hex));
      expect(info.wireFormat).toBe(wireFormat);
      expect(toHex(info.encoded)).toBe(hex);
      checked++;
    }
    expect(checked).toBe(cases.length);
  });

  it('a truncated message is MALFORMED', () => {
    const hex = cases[0]!.mls_welcome!;
    expect(() => inspectMessage(fromHex(hex).slice(0, 10))).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});
