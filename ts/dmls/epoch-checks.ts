/**
 * Epoch checks (docs/PROTOCOL.md §6.11): an importing commit carries the
 * check value of each epoch it imports, signed by the owner, so a member
 * holding another value for that epoch sees the equivocation.
 */
import type { MlsHeader } from '../codec/mls-header.js';
import { CodecError } from '../codec/tls.js';
import { fromHex, toHex } from '../mls/bytes.js';
import type { Group } from '../mls/group.js';
import { decodeSafeAad, encodeSafeAad } from '../mls/safe-aad.js';
import { DmlsEquivocationError, DmlsError } from './dmls-error.js';
import { DMLS_EPOCH_CHECKS_COMPONENT, EPOCH_CHECKS_LABEL, decodeEpochChecks, encodeEpochChecks, epochChecksTbs, parsePskGroupId } from './dmls-messages.js';
import { ownerLeaf } from './member-credentials.js';
import type { MemberSession } from './member-session.js';

/**
 * The epoch checks a commit's authenticated data carries (§6.11), in
 * `group` at the epoch the commit was made in: undefined without them
 * (not a SafeAAD, or no item of ours: an older release, the plain
 * profile); `malformed` when the item does not decode; `not-owner` when
 * its signature is not by the owner's key in that epoch (the sender of a
 * commit that fails is not known: any member of the send group, or an
 * outsider's external commit, could have made it).
 */
export function epochChecks(member: MemberSession, group: Group, aad: Uint8Array | undefined): { pskId: Uint8Array; check: Uint8Array }[] | undefined {
  const item = aad?.length ? decodeSafeAad(aad)?.find((i) => i.componentId === DMLS_EPOCH_CHECKS_COMPONENT) : undefined;
  if (!item) return undefined;
  let decoded: ReturnType<typeof decodeEpochChecks>;
  try {
    decoded = decodeEpochChecks(item.data);
  } catch (err) {
    if (err instanceof CodecError) throw new DmlsError('malformed', `a commit whose epoch checks do not decode: ${err.message}`);
    throw err;
  }
  const key = ownerLeaf(group)?.signatureKey;
  const tbs = epochChecksTbs(group.id, group.epoch, decoded.checks);
  if (!key || !member.client.verifyWithLabel(group.state().ciphersuite, key, EPOCH_CHECKS_LABEL, tbs, decoded.signature)) {
    throw new DmlsError('not-owner', 'epoch checks not signed by the send group\'s owner');
  }
  return decoded.checks;
}

/** The SafeAAD with the checks of the epochs `psks` import that this member holds, signed (§6.11); none without any. */
export function checksAad(member: MemberSession, group: Group, psks: Uint8Array[]): Uint8Array | undefined {
  const checks = psks.flatMap((pskId) => {
    const check = member.state.checks[toHex(pskId)];
    return check ? [{ pskId, check: fromHex(check) }] : [];
  });
  if (checks.length === 0) return undefined;
  // Leaf 0's key in this epoch (before a rotation this commit makes), as the receivers verify it.
  const signer = { signaturePublicKey: ownerLeaf(group)!.signatureKey, ciphersuite: group.state().ciphersuite };
  const signature = member.client.signWithLabel(signer, EPOCH_CHECKS_LABEL, epochChecksTbs(group.id, group.epoch, checks));
  return encodeSafeAad([{ componentId: DMLS_EPOCH_CHECKS_COMPONENT, data: encodeEpochChecks(checks, signature) }]);
}

/**
 * Once a commit of send group `hex` (`group`) failed as `INVALID_COMMIT` (its
 * content authenticated, its sender unknown: the checks must be signed
 * by the owner, `epochChecks`), each epoch check it carries against this
 * member's for that PSK (§6.11). Another value is an equivocation, final
 * (`DmlsEquivocationError`): the epoch is noted as disputed, and this
 * member neither imports nor acknowledges it. A check it does not hold
 * yet is compared when the commit is retried.
 */
export async function compareChecks(member: MemberSession, header: MlsHeader, group: Group, hex: string): Promise<void> {
  if (header.contentType !== 3) return;
  for (const { pskId, check } of epochChecks(member, group, header.authenticatedData) ?? []) {
    const mine = member.state.checks[toHex(pskId)];
    if (mine === undefined || mine === toHex(check)) continue;
    const { epoch, groupId } = parsePskGroupId(pskId);
    const [g, e] = [toHex(groupId), Number(epoch)];
    await member.atomically(async () => {
      member.state.disputed[g] = e;
      if (member.state.pending[g] === e) delete member.state.pending[g];
      await member.save();
    });
    throw new DmlsEquivocationError(groupId, e, fromHex(hex), fromHex(member.state.owners[hex] ?? ''));
  }
}
