/**
 * A received application message as the core hands it over: one flat
 * `Uint8Array` (crates/core/src/inspect.rs `application`: sender leaf u32 ‖
 * epoch u64 ‖ data length u32 ‖ data ‖ aad, big-endian), cheaper to cross
 * the wasm boundary than an object built field by field.
 */
import type { ApplicationMessage } from '../../pkg/paired_mls_core.js';

/**
 * The `ApplicationMessage` of a flat result: `data` and `aad` are copies of
 * their own, and the flat buffer, which held the plaintext, is zero-filled.
 */
export function decodeApplication(flat: Uint8Array): ApplicationMessage {
  const view = new DataView(flat.buffer, flat.byteOffset, flat.byteLength);
  const dataEnd = 16 + view.getUint32(12);
  const message: ApplicationMessage = {
    kind: 'application',
    sender: { type: 'member', leafIndex: view.getUint32(0) },
    epoch: Number(view.getBigUint64(4)),
    data: flat.slice(16, dataEnd),
    aad: flat.slice(dataEnd),
  };
  flat.fill(0);
  return message;
}
