/**
 * Route `rejoin` of a cease (the draft's route, docs/PROTOCOL.md §4.9):
 * per group an external join with a new key, then the removal of the
 * anchor leaf; the group's state from before the join is kept until the
 * DS answered it, so a refused join is undone.
 */
import { bytesEqual, concatBytes, fromHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import { LOST_IN_CEASE, PENDING_IN_CEASE, anchorLeafRemains, ceaseStage, ceasedBy, markCeased, ownKey } from './cease-stage.js';
import { settle } from './commit-settle.js';
import { type DeviceSession, ENVIRONMENT_FAILURES, type Queue } from './device-session.js';
import type { CeaseSend, CeasedGroup } from './paired-types.js';
import { PairingError } from './pairing-error.js';
import { CEASE_JOIN_RECORDS, type CeasingGroup, joinedBy, moveOldJoinRecords } from './pairing-state.js';

const JOIN_UNCONFIRMED = "on the leaf of this cease's join, with no record that the DS took it (the join's records are gone): its removal would be made on a fork; delete the group to give it up, or rejoin it with a key other than the cease's, then ceasePair again";

/** Route `rejoin`, the groups still to cease, one after the other. */
export async function rejoinGroups(device: DeviceSession, send: CeaseSend, queue: Queue): Promise<CeasedGroup[]> {
  const results: CeasedGroup[] = [];
  for (const entry of [...(device.state.ceasing?.groups ?? [])]) {
    // Its join cannot be undone (`snapshot-missing`): the other groups go on.
    const result = await rejoinGroup(device, entry, send, queue).catch((error: unknown) => {
      if (error instanceof PairingError && error.reason === 'snapshot-missing') return { groupId: fromHex(entry.groupId), commits: [], ceased: false, error };
      throw error;
    });
    results.push(result);
  }
  return results;
}

/**
 * Route `rejoin`, one group: the external join, handed to `send`, then
 * the removal of the anchor leaf, handed to `send` and merged once it
 * resolved. The join replaces the group under its id and is merged as it
 * is made (the engine leaves no external commit pending), so the group's
 * state from before it is kept in a record, with the join, until the DS
 * answered: a refused join puts that state back, so the device stays a
 * member on the anchor leaf and processes what won. After a crash while
 * `send` waited, a later call sends the same join again (a DS answers a
 * retried commit as it answered it first, docs/PROTOCOL.md §8.1) and
 * goes on from its answer.
 */
async function rejoinGroup(device: DeviceSession, entry: CeasingGroup, send: CeaseSend, queue: Queue): Promise<CeasedGroup> {
  const identity = device.requireAnchor();
  const groupId = fromHex(entry.groupId);
  const records = CEASE_JOIN_RECORDS;
  const commits: Uint8Array[] = [];
  let resend: Uint8Array | undefined;
  const stage = await queue(() =>
    device.atomically(async () => {
      await moveOldJoinRecords(device.client, entry.groupId);
      let taken = false;
      // A group given up (deleted) is ceased; its records went with it (deleteGroup).
      if (device.client.groupIds().some((g) => bytesEqual(g, groupId))) {
        const group = device.client.group(groupId);
        // The DS's yes holds for the leaf the join made (the cease's key and that leaf's fresh HPKE key), not for the leaf of
        // a later join into the id with the same key (the app's, which the DS may never have taken; or the yes put back).
        const joined = device.client.groupRecord(groupId, records.joined);
        const yes = yesOf(group, identity.signaturePublicKey);
        taken = joined !== undefined && yes !== undefined && bytesEqual(joined, yes);
        // The join's records hold only while the group is that join's: the device on its new key's leaf, in the epoch the join
        // made (each starts with its authenticator). Others (put back in storage) are dropped, not sent or imported.
        const own = group.ownLeaf();
        const join = device.client.groupRecord(groupId, records.join);
        const snapshot = device.client.groupRecord(groupId, records.snapshot);
        const snapshotOfThisJoin = joinedBy(group, snapshot);
        snapshot?.fill(0); // a copy of the old epoch's secrets
        // With the DS's yes recorded, they are put back ones.
        const ours = !taken && own && bytesEqual(own.signatureKey, identity.signaturePublicKey) && (snapshotOfThisJoin || joinedBy(group, join));
        if (!ours) await dropJoinRecords(device, groupId);
        resend = ours && joinedBy(group, join) ? join!.slice(group.epochAuthenticator().length) : undefined;
        if (resend) return 'resend';
        // The join lost (storage), the state from before it kept: put that back, as for a refused join.
        if (ours && snapshot !== undefined) await restoreSnapshot(device, entry.groupId);
      }
      const stage = ceaseStage(device, 'rejoin', entry);
      if (stage === 'done') {
        await markCeased(device, [entry.groupId]);
        await dropJoinRecords(device, groupId, true);
      }
      // On the leaf of this cease's join with no record of the DS taking it: a join the DS never took (its records lost), whose removal
      // would be made on a fork of the group (§4.9).
      if (stage === 'remove' && bytesEqual(ownKey(device.client.group(groupId)), identity.signaturePublicKey) && !taken) return 'unconfirmed';
      return stage;
    }),
  );
  if (stage === 'done') return { groupId, commits, ceased: true };
  if (stage === 'busy') return { groupId, commits, ceased: false, error: new PairingError('PAIRING_STATE', PENDING_IN_CEASE) };
  if (stage === 'lost') return { groupId, commits, ceased: false, error: new PairingError('PAIRING_STATE', LOST_IN_CEASE) };
  if (stage === 'unconfirmed') return { groupId, commits, ceased: false, error: new PairingError('PAIRING_STATE', JOIN_UNCONFIRMED, 'join-unconfirmed') };
  if (stage === 'join' || stage === 'resend') {
    const join =
      resend ??
      (await queue(() =>
        device.atomically(async () => {
          const group = device.client.group(groupId);
          const snapshot = device.client.exportSiblingGroupState(groupId);
          const groupInfo = await group.exportGroupInfo();
          // The group's wire format, ratchets and capabilities (intents' type among them) stay; the leaf is an ordinary member's now.
          const options = group.joinOptions();
          // An earlier join's records go, its yes (the same key, not this one's) among them; other layers' records
          // of the group (a recovery registry) and its bound PSKs carry over to the group joined: the same group.
          await dropJoinRecords(device, groupId, true);
          const joined = await device.client.rejoinKeepingRecords(groupId, async () => {
            await device.client.deleteGroup(groupId);
            return device.client.joinExternal(groupInfo, identity, { ...options, capabilities: { ...options.capabilities, virtualClient: false } });
          });
          if (joined.group.state().pendingCommit) await joined.group.mergePendingCommit();
          // The state from before the join, bound to the epoch the join made (its authenticator first).
          const auth = joined.group.epochAuthenticator();
          const record = concatBytes(auth, snapshot);
          snapshot.fill(0);
          try {
            await device.client.putGroupRecord(groupId, records.snapshot, record);
          } finally {
            record.fill(0);
          }
          // The join, bound to that epoch too.
          await device.client.putGroupRecord(groupId, records.join, concatBytes(auth, joined.commit));
          return joined.commit;
        }),
      ));
    let refusal: { error: unknown } | undefined;
    try {
      await send({ groupId, commit: join, kind: 'join', signatureKey: identity.signaturePublicKey });
    } catch (error) {
      refusal = { error };
    }
    await queue(() =>
      device.atomically(async () => {
        if (refusal) await restoreSnapshot(device, entry.groupId);
        else {
          await dropJoinRecords(device, groupId);
          // The DS took the join: of the leaf it made (none if the device was removed meanwhile: the group is lost, no yes).
          const yes = yesOf(device.client.group(groupId), identity.signaturePublicKey);
          if (yes) await device.client.putGroupRecord(groupId, records.joined, yes);
        }
      }),
    );
    if (refusal) return { groupId, commits, ceased: false, error: refusal.error };
    commits.push(join);
  }
  const removal = await queue(() =>
    device.atomically(async () => {
      const group = device.client.group(groupId);
      if (!anchorLeafRemains(device, group, entry)) {
        await markCeased(device, [entry.groupId]);
        await dropJoinRecords(device, groupId, true);
        return undefined;
      }
      const made = await group.commit({ remove: [entry.anchorLeaf], skipProposalsFrom: entry.anchorLeaf });
      return { group, made, commit: made.commit, sent: group.pendingCommitDigest() };
    }),
  );
  if (!removal) return { groupId, commits, ceased: true };
  const settled = await settle(device, 
    removal.group,
    removal.sent,
    () => send({ groupId, commit: removal.commit, kind: 'remove', signatureKey: ownKey(removal.group) }),
    {
      merged: async () => {
        await markCeased(device, [entry.groupId]);
        await dropJoinRecords(device, groupId, true);
      },
    },
    queue,
  );
  if (!settled.merged) return { groupId, commits, ceased: false, error: settled.error };
  return ceasedBy(groupId, [...commits, removal.commit], removal.made, entry.anchorLeaf);
}

/**
 * Put the group's state from before a rejoin's external join back (the
 * joined group, whose join the DS refused, is dropped with the join's
 * records: they are its group records). That state missing or damaged
 * (storage): `PAIRING_STATE` `snapshot-missing`, and nothing changes
 * (checked before the group is dropped; a failed import rolls the
 * caller's transaction back).
 */
async function restoreSnapshot(device: DeviceSession, hex: string): Promise<void> {
  const groupId = fromHex(hex);
  const lost = (cause?: unknown) =>
    new PairingError('PAIRING_STATE', "the group's state from before the rejoin's external join is missing or damaged, so the join cannot be undone: delete the group to give it up, then ceasePair again", 'snapshot-missing', cause === undefined ? undefined : { cause });
  // Only the state from before the group's own join (one put back from another join, or damaged, is not).
  const live = device.client.groupIds().some((g) => bytesEqual(g, groupId)) ? device.client.group(groupId) : undefined;
  const snapshot = live && device.client.groupRecord(groupId, CEASE_JOIN_RECORDS.snapshot);
  try {
    if (!live || !joinedBy(live, snapshot)) throw lost();
    const auth = live.epochAuthenticator().length;
    // The join's records go; other layers' records of the group and its bound PSKs carry over to the state put back.
    await dropJoinRecords(device, groupId, true);
    await device.client.rejoinKeepingRecords(groupId, async () => {
      await device.client.deleteGroup(groupId);
      try {
        await device.client.importSiblingGroupState(groupId, snapshot!.slice(auth)); // wipes that copy
      } catch (err) {
        if (err instanceof MlsError && ENVIRONMENT_FAILURES.has(err.code)) throw err;
        throw lost(err);
      }
    });
  } finally {
    snapshot?.fill(0); // a copy of the old epoch's secrets
  }
}

/** Drop a rejoin's group records: the join's, and with `joined` the record that the DS took it. */
async function dropJoinRecords(device: DeviceSession, groupId: Uint8Array, joined = false): Promise<void> {
  const { snapshot, join, joined: taken } = CEASE_JOIN_RECORDS;
  for (const name of joined ? [snapshot, join, taken] : [snapshot, join]) await device.client.putGroupRecord(groupId, name, undefined);
}

/**
 * The DS's yes of a rejoin's join, as recorded: the cease's signature key,
 * then the HPKE encryption key of the device's own leaf, the leaf that join
 * made (a later external join into the id makes a fresh one).
 */
function yesOf(group: Group, key: Uint8Array): Uint8Array | undefined {
  const own = group.ownLeaf();
  if (!own) return undefined; // removed: no leaf the yes could be of
  return concatBytes(key, own.encryptionKey);
}
