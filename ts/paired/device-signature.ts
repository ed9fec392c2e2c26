/**
 * Paired MLS standard mode (docs/PROTOCOL.md §4.12): the anchor leaf lists
 * its paired devices in an AppDataDictionary component, and every
 * handshake message sent from the anchor carries, in its SafeAAD, a
 * signature by the sending device's own key over the message's content
 * digest (crates/core/src/paired_standard.rs). Members check it with the
 * process check `pairedDeviceSignatures()`, which this layer makes a
 * default of every client once loaded (the core reports which messages
 * need it; a client without the check refuses them with `CHECK_MISSING`),
 * so the anchor's shared signature key alone no longer lets anyone act for
 * the anchor, and members learn which device acted.
 * A device builds its signed messages in one core call each
 * (crates/core/src/device_signed.rs).
 *
 * The draft (000, §3, §4.5, §4.6, §6.1) puts a vector of signature keys
 * into the LeafNode; that would change the MLS wire format for every
 * member, so the keys live in an extension component instead and members
 * that do not know it (e.g. ts-mls) still interoperate.
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import type { CommitOptions, CommitResult, ProposalRequest } from '../mls/types.js';
import { bytesEqual } from '../mls/bytes.js';
import { registerDefaultCheck, type ProcessCheck, type ProposalToCheck, type CommitToCheck } from '../mls/checks.js';
import { commitSignedByDevice, proposeSignedByDevice } from '../mls/layer-calls.js';
import { Reader, Writer } from '../codec/tls.js';
import { PairingError } from './pairing-error.js';
import { decodeSafeAad, encodeSafeAad } from '../mls/safe-aad.js';

/** AppDataDictionary component of the anchor leaf: its paired devices. */
export const PAIRED_DEVICES_COMPONENT = 0xf1b1;
/** SafeAAD component carrying the device signature. */
export const DEVICE_SIGNATURE_COMPONENT = 0xf1b2;
/**
 * Extension type every client of this library lists in its leaf
 * capabilities (crates/core/src/paired_standard.rs): a group that lists it
 * in RequiredCapabilities admits only members that check device signatures.
 */
export const DEVICE_SIGNATURES_CAPABILITY = 0xf1b3;
/** SignWithLabel label of device signatures (standard mode). */
export const DEVICE_SIGNATURE_LABEL = 'PairedMLS DeviceSignature';

/** One paired device of an anchor: its own credential identity and key. */
export interface PairedDeviceKey {
  identity: Uint8Array;
  signatureKey: Uint8Array;
}

/** Content types of RFC 9420 §6. */
export const CONTENT_TYPE = { proposal: 2, commit: 3 } as const;

/** What a device signs: the message's group, epoch, sender leaf, content type and content digest. */
export interface DeviceSignatureTbs {
  groupId: Uint8Array;
  epoch: bigint;
  senderLeaf: number;
  contentType: number;
  contentDigest: Uint8Array;
}

// struct { opaque identity<V>; opaque signature_key<V>; } PairedDeviceKey;
// PairedDeviceKey devices<V>;
/** Encode the anchor leaf's device list (PairedDeviceKey devices<V>). */
export function encodePairedDevices(devices: readonly PairedDeviceKey[]): Uint8Array {
  return new Writer().list(devices, (w, d) => w.vector(d.identity).vector(d.signatureKey)).finish();
}

/** Decode the anchor leaf's device list; throws `CodecError` on malformed bytes. */
export function decodePairedDevices(bytes: Uint8Array): PairedDeviceKey[] {
  const r = new Reader(bytes);
  const devices = r.list((item) => ({ identity: item.vector(), signatureKey: item.vector() }));
  r.end();
  return devices;
}

// SafeAAD goes through the engine's codec (ts/mls/safe-aad.ts).
export { encodeSafeAad, decodeSafeAad, type SafeAadItem } from '../mls/safe-aad.js';

// struct { opaque group_id<V>; uint64 epoch; uint32 sender_leaf;
//          uint8 content_type; opaque content_digest<V>; } DeviceSignatureTBS;
/** Encode DeviceSignatureTBS, what a device signs. */
export function encodeDeviceSignatureTbs(t: DeviceSignatureTbs): Uint8Array {
  return new Writer().vector(t.groupId).u64(t.epoch).u32(t.senderLeaf).u8(t.contentType).vector(t.contentDigest).finish();
}

// struct { opaque signature_key<V>; opaque signature<V>; } DeviceSignature;
function encodeDeviceSignature(signatureKey: Uint8Array, signature: Uint8Array): Uint8Array {
  return new Writer().vector(signatureKey).vector(signature).finish();
}

function decodeDeviceSignature(bytes: Uint8Array): { signatureKey: Uint8Array; signature: Uint8Array } {
  const r = new Reader(bytes);
  const out = { signatureKey: r.vector(), signature: r.vector() };
  r.end();
  return out;
}

/** The SafeAAD a device sends with an anchor handshake message. */
export function deviceSignedAad(client: MlsClient, device: Identity, tbs: DeviceSignatureTbs): Uint8Array {
  const signature = client.signWithLabel(device, DEVICE_SIGNATURE_LABEL, encodeDeviceSignatureTbs(tbs));
  return encodeSafeAad([{ componentId: DEVICE_SIGNATURE_COMPONENT, data: encodeDeviceSignature(device.signaturePublicKey, signature) }]);
}

export function deviceSignatureError(message: string): PairingError {
  return new PairingError('DEVICE_SIGNATURE', message);
}

/** The devices listed in leaf `leafIndex` of `group`, if it is a standard-mode anchor. */
export function listedDevices(group: Group, leafIndex: number): PairedDeviceKey[] | undefined {
  const data = group.leafAppData(leafIndex, PAIRED_DEVICES_COMPONENT);
  // An empty value is a cleared list (CeasePair): an ordinary member's leaf.
  return data && data.length > 0 ? authorizedBy(data) : undefined;
}

/** A stored device list; a malformed one authorizes nobody. */
export function authorizedBy(list: Uint8Array): PairedDeviceKey[] {
  try {
    return decodePairedDevices(list);
  } catch {
    return [];
  }
}

/**
 * Check the device signature of a handshake message from `senderLeaf`
 * against `devices` (the sender's listed devices before the message).
 * Returns the device that signed; throws DEVICE_SIGNATURE otherwise.
 */
export function verifyDeviceSignature(
  group: Group,
  devices: readonly PairedDeviceKey[],
  message: { aad: Uint8Array; epoch: number; senderLeaf: number; contentType: number; contentDigest: Uint8Array },
): PairedDeviceKey {
  const items = decodeSafeAad(message.aad);
  const item = items?.find((i) => i.componentId === DEVICE_SIGNATURE_COMPONENT);
  if (!item) throw deviceSignatureError('a handshake message from a standard-mode anchor carries no device signature');
  let signed: { signatureKey: Uint8Array; signature: Uint8Array };
  try {
    signed = decodeDeviceSignature(item.data);
  } catch {
    throw deviceSignatureError('the device signature is malformed');
  }
  const device = devices.find((d) => bytesEqual(d.signatureKey, signed.signatureKey));
  if (!device) throw deviceSignatureError('the message was signed by a device the anchor does not list');
  const tbs = encodeDeviceSignatureTbs({
    groupId: group.id,
    epoch: BigInt(message.epoch),
    senderLeaf: message.senderLeaf,
    contentType: message.contentType,
    contentDigest: message.contentDigest,
  });
  const ciphersuite = group.state().ciphersuite;
  const valid = group.client.verifyWithLabel(ciphersuite, device.signatureKey, DEVICE_SIGNATURE_LABEL, tbs, signed.signature);
  if (!valid) throw deviceSignatureError('the device signature does not verify over this message');
  return device;
}

/**
 * Commit for the anchor, signed by `device`: one core call
 * (crates/core/src/device_signed.rs builds it twice — once for its content
 * digest, once with the signed AAD — and refuses with DEVICE_SIGNATURE,
 * nothing changed, when the builds differ; paired commits are deterministic
 * through `vcEpochId`).
 */
export function signedAnchorCommit(group: Group, device: Identity, spec: CommitOptions): Promise<CommitResult> {
  return commitSignedByDevice(group, device, spec);
}

/** A standalone proposal for the anchor, signed by `device` (one core call, same method). */
export function signedAnchorProposal(group: Group, device: Identity, request: ProposalRequest): Promise<Uint8Array> {
  return proposeSignedByDevice(group, device, request);
}

/**
 * The process check of Paired MLS standard mode (`authenticate` stage;
 * docs/PROTOCOL.md §4.12, §1.3): a handshake message that the core found to
 * need a device signature (its sender leaf lists devices, or it is an
 * external commit replacing such a leaf) must carry a valid one by a listed
 * device. Refuses with `PairingError` `DEVICE_SIGNATURE`; on success the
 * result names the device (`device`).
 */
export function pairedDeviceSignatures(): ProcessCheck {
  const check = (message: ProposalToCheck | CommitToCheck) => {
    const auth = message.report.authorizingDevices;
    if (!auth) return undefined;
    const device = verifyDeviceSignature(message.group, authorizedBy(auth.devices), {
      aad: message.aad,
      epoch: message.epoch,
      senderLeaf: auth.leafIndex,
      contentType: message.kind === 'proposal' ? CONTENT_TYPE.proposal : CONTENT_TYPE.commit,
      contentDigest: message.report.contentDigest,
    });
    return { device };
  };
  return { name: 'paired/device-signature', stage: 'authenticate', covers: ['device-signature'], proposal: check, commit: check };
}

// Every client of this library lists DEVICE_SIGNATURES_CAPABILITY: where
// this layer is loaded, its clients check device signatures by default
// (elsewhere they refuse such messages with CHECK_MISSING).
registerDefaultCheck(pairedDeviceSignatures());
