/**
 * SafeAAD (draft-ietf-mls-extensions §4.9): the component-tagged items an
 * MLS message's authenticated data starts with. Encoded and decoded by the
 * engine's own codec (openmls `SafeAad`), so there is one codec for the
 * structure and one rule for it: items strictly increasing by component id,
 * none repeated. Both functions run in the core, so they need `init()`.
 *
 * ```tls
 * struct { uint16 component_id; opaque aad_item_data<V>; } SafeAADItem;
 * struct { SafeAADItem aad_items<V>; } SafeAAD;
 * ```
 */
import { decodeSafeAad as coreDecodeSafeAad, encodeSafeAad as coreEncodeSafeAad } from '../../pkg/paired_mls_core.js';
import { MlsError } from './errors.js';
import { call } from './init.js';

/**
 * One SafeAAD item: the component it belongs to and that component's bytes
 * (the shape of `SafeAadEntry`, which crates/core/src/safe_aad.rs declares;
 * the core's typed result is returned as it is).
 */
export interface SafeAadItem {
  componentId: number;
  data: Uint8Array;
}

/**
 * The SafeAAD with these items. They must be sorted by component id with
 * none repeated; otherwise `MlsError` `INVALID_ARGUMENT` (the items are not
 * re-sorted: the order is the caller's statement of what it signs).
 */
export function encodeSafeAad(items: readonly SafeAadItem[]): Uint8Array {
  return call(() => coreEncodeSafeAad(items.map((i) => ({ componentId: i.componentId, data: i.data }))));
}

/**
 * The items of a SafeAAD, or undefined when `aad` is not exactly one
 * well-formed SafeAAD (truncated, trailing bytes, or items unsorted or
 * repeated).
 */
export function decodeSafeAad(aad: Uint8Array): SafeAadItem[] | undefined {
  try {
    return call(() => coreDecodeSafeAad(aad));
  } catch (err) {
    if (err instanceof MlsError && err.code === 'MALFORMED') return undefined;
    throw err;
  }
}
