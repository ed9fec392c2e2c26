/**
 * The send-group rules of Distributed MLS (seed 003 §4; docs/PROTOCOL.md
 * §6.2) as a process check (`admit` stage, docs/PROTOCOL.md §1.3): in a
 * send group only the owner (leaf 0) commits, a commit covers only the
 * proposal types DMLS uses, and Update is the only standalone proposal.
 * `DMember` runs it on every message of its send groups; a refused
 * proposal is dropped from the queue and a refused commit discarded
 * (`DmlsError` `not-owner` / `proposal-type` / `identity`). A member's
 * identity is fixed (a credential update changes its signature key only):
 * the universe is its members' identities, and a PSK import waits until
 * every receiver's identity is in the exporting send group, so one member
 * showing another identity in some send groups only could stall every
 * import of the others' epochs there. Application messages from
 * others than the owner are refused by `DMember` itself (checks see
 * handshake messages only). With an Authentication Service
 * (`DmlsOptions.credentialCheck`) `DMember` runs the credential half after
 * these, `sendGroupCredentials` (credential-check.ts).
 */
import type { ProcessCheck } from '../mls/checks.js';
import type { Group } from '../mls/group.js';
import { bytesEqual } from '../mls/bytes.js';
import { DmlsError } from './dmls-error.js';

/** Proposal types a send-group commit may cover (Update by reference; PSK, Add, Remove by the owner). */
const COMMITTABLE = new Set(['update', 'preSharedKey', 'add', 'remove']);

export const SEND_GROUP_RULES: ProcessCheck = {
  name: 'dmls/send-group-rules',
  stage: 'admit',
  proposal: ({ proposal, sender, group }) => {
    if (proposal.type !== 'update') throw new DmlsError('proposal-type', `a ${proposal.type} proposal in a send group`);
    if (sender.type === 'member') keepsIdentity(group, sender.leafIndex, proposal.credential.identity, 'an Update proposal');
  },
  commit: ({ sender, staged, group }) => {
    if (sender.type !== 'member' || sender.leafIndex !== 0) throw new DmlsError('not-owner', 'a commit in a send group from someone other than its owner');
    const foreign = staged.proposals.find((p) => !COMMITTABLE.has(p.proposal.type));
    if (foreign) throw new DmlsError('proposal-type', `a commit covering a ${foreign.proposal.type} proposal in a send group`);
    if (staged.pathCredential) keepsIdentity(group, 0, staged.pathCredential.identity, 'an UpdatePath');
  },
};

/** The new credential of leaf `leafIndex` must carry the identity the leaf has (`identity` otherwise). */
function keepsIdentity(group: Group, leafIndex: number, identity: Uint8Array, what: string): void {
  const current = group.member(leafIndex)?.credential.identity;
  if (!current || !bytesEqual(current, identity)) throw new DmlsError('identity', `${what} that changes a member's identity in a send group`);
}
