/**
 * Distributed MLS (seed 003 draft-xue-multi-mls, and the later
 * draft-xue-distributed-mls as a second profile; docs/PROTOCOL.md §6): one
 * participant ("DMember") of a universe. Each DMember owns a *send group*
 * in which only it commits and sends; it is an ordinary receiver in every
 * other member's send group. Fresh randomness crosses send groups as
 * external PSKs exported from the send group that updated, so FS and PCS
 * hold without any agreement on a global order of commits.
 *
 * Delivery may reorder, duplicate and delay: messages that cannot be
 * processed yet are buffered and retried (bounded), stale duplicates are
 * dropped.
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import { invalidArgument } from '../mls/errors.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { DmlsError } from './dmls-error.js';
import { dmlsProfileOf, storeEpochPsk, type DmlsEpochValues } from './dmls-profile.js';
import { MemberSession, sendGroupOptions } from './member-session.js';
import { emptyState, loadMemberState, type State } from './member-state.js';
import { turn } from './member-turns.js';
// The shapes it takes and returns are in their own module, which the operations' modules import too.
import type { DmlsEvent, DmlsOptions, FoundingOptions, UniverseConfig } from './member-types.js';
import { bindSendGroups, checkExportLength, checkSuite, createSendGroup, decodeMessage } from './universe-founding.js';
import { commitImports, forgetSendGroup, protectData, removeFromSendGroup, updateOwn } from './own-commits.js';
import { requestRejoin } from './rejoin.js';
import { unprotectMessage } from './message-buffer.js';
import { checkTree, noteOwnerKey } from './member-credentials.js';
import { storePsk } from './psk-imports.js';

/** A participant of a Distributed MLS universe (docs/PROTOCOL.md §6): its own send group and the others' imported epochs. */
export class DMember {
  readonly client: MlsClient;
  /** The current credential (changes with `update({ newIdentity })`). */
  identity: Identity;
  readonly universe: Required<UniverseConfig>;
  /** The state, buffer, options and checks of this member: handed to the modules of its operations, never to the application. */
  readonly #session: MemberSession;

  private constructor(client: MlsClient, identity: Identity, universe: UniverseConfig, options: DmlsOptions, state: State) {
    this.client = client;
    this.identity = identity;
    this.universe = { profile: 'multi-mls', ...universe };
    this.#session = new MemberSession(this, options, state);
  }

  /**
   * Found a universe (seed 003 §6.1): own send group with everyone, then
   * the definition (under `multi-mls` its id is this send group's id).
   * `messages` (Welcome, definition) go to the others' `joinUniverse`.
   */
  static found(client: MlsClient, identity: Identity, keyPackages: Uint8Array[], founding: FoundingOptions = {}, options: DmlsOptions = {}): Promise<{ member: DMember; universe: Required<UniverseConfig>; messages: Uint8Array[] }> {
    // Not async, as joinUniverse and init: a reentrant-check is thrown, not rejected. createSendGroup checks the export length.
    const profile = founding.profile ?? 'multi-mls';
    const exportLength = founding.exportLength ?? 32;
    return turn(client, () => client.atomically(async () => {
      const draft = new DMember(client, identity, { id: new Uint8Array(0), profile, exportLength, ciphersuites: founding.ciphersuites ?? [identity.ciphersuite] }, options, emptyState());
      const messages = await createSendGroup(draft.#session, keyPackages, {
        named: (groupId) => {
          (draft.universe as { id: Uint8Array }).id = groupId;
        },
      });
      // The epoch every joiner joins at (that of the definition): the same bindings as theirs.
      await bindSendGroups(draft.#session, draft.sendGroup);
      await draft.#session.save();
      return { member: draft, universe: draft.universe, messages };
    }));
  }

  /**
   * Join a founded universe from the founder's Welcome and definition (the
   * only source of the universe), then create the own send group;
   * `messages` (Welcome, announce) go to the universe.
   */
  static joinUniverse(client: MlsClient, identity: Identity, welcome: Uint8Array, definition: Uint8Array, keyPackages: Uint8Array[], options: DmlsOptions = {}): Promise<{ member: DMember; universe: Required<UniverseConfig>; messages: Uint8Array[] }> {
    return turn(client, () => client.atomically(async () => {
      const founderGroup = await client.joinFromWelcome(welcome, sendGroupOptions(options));
      const result = await founderGroup.process(definition);
      if (result.kind !== 'application') throw new DmlsError('universe', 'the universe definition is not an application message');
      if (result.sender.type !== 'member' || result.sender.leafIndex !== 0) throw new DmlsError('not-owner', 'a universe definition from someone other than the send group owner');
      const m = decodeMessage(result.data);
      if (m.type !== 'announce') throw new DmlsError('universe', 'the first message of a founder is not a universe definition');
      const profile = dmlsProfileOf(m.profile);
      checkExportLength(profile, m.exportLength);
      // seed 003 §6.1: the universe identifier is the founder's send group id.
      if (profile === 'multi-mls' && !bytesEqual(m.universeId, founderGroup.id)) throw new DmlsError('universe', 'a multi-mls universe whose identifier is not its founder\'s send group id');
      if (!m.members.some((id) => bytesEqual(id, identity.identity))) throw new DmlsError('universe', 'a universe definition without this member');
      // seed 003 §6.1: the definition "defines a Universe U as the members of
      // this group". A list of the founder's own making would have this
      // member follow send groups of identities outside that group, or
      // refuse those of members in it, unlike the others.
      const inGroup = new Set(founderGroup.members().map((x) => toHex(x.credential.identity)));
      const listed = new Set(m.members.map(toHex));
      if (listed.size !== inGroup.size || [...listed].some((id) => !inGroup.has(id))) {
        throw new DmlsError('universe', 'a universe definition whose members are not the members of the founder\'s send group');
      }
      const universe = { id: m.universeId, profile, exportLength: m.exportLength, ciphersuites: m.ciphersuites };
      const draft = new DMember(client, identity, universe, options, emptyState());
      draft.#session.state.members = m.members.map(toHex);
      checkSuite(draft.#session, founderGroup);
      // The founder (the definition came from its leaf 0) and everyone it added.
      await checkTree(draft.#session, founderGroup, 'the founder\'s send group');
      const founder = founderGroup.member(0)!;
      draft.#session.state.owners[toHex(founderGroup.id)] = toHex(founder.credential.identity);
      noteOwnerKey(draft.#session, founderGroup);
      await storePsk(draft.#session, founderGroup, false);
      // Its own send group takes the id the founder's send group binds to its leaf, under that leaf's key
      // (in another ciphersuite, which the universe may accept, the identity's key there).
      const leaf = founderGroup.ownLeaf()!;
      if (identity.ciphersuite === founderGroup.state().ciphersuite && !bytesEqual(leaf.signatureKey, identity.signaturePublicKey)) {
        throw invalidArgument('identity: not the one the founder\'s Welcome added (its KeyPackage\'s signature key)');
      }
      await bindSendGroups(draft.#session, founderGroup);
      const groupId = (await storeEpochPsk(founderGroup, draft.#session.params(), leaf.signatureKey)).derivedGroupId;
      const messages = await createSendGroup(draft.#session, keyPackages, { groupId });
      return { member: draft, universe: draft.universe, messages };
    }));
  }

  /** INIT with an application-defined universe (later draft): own send group with everyone, then the announcement. */
  static init(client: MlsClient, identity: Identity, universe: UniverseConfig, keyPackages: Uint8Array[], options: DmlsOptions = {}): Promise<{ member: DMember; messages: Uint8Array[] }> {
    return turn(client, () => client.atomically(async () => {
      const draft = new DMember(client, identity, universe, options, emptyState());
      const messages = await createSendGroup(draft.#session, keyPackages);
      return { member: draft, messages };
    }));
  }

  /**
   * Reopen the DMember saved in `client`'s storage, with its universe and
   * profile; `identity` is its current one. `options` are not saved: pass
   * the same ones (a `credentialCheck` in particular) again.
   */
  static open(client: MlsClient, identity: Identity, options: DmlsOptions = {}): DMember {
    const { state, universe: u } = loadMemberState(client);
    // A state saved while shorter lengths were taken derives short PSKs (no PCS: §6.4); it needs a new universe.
    checkExportLength(u.profile ?? 'multi-mls', u.exportLength);
    return new DMember(client, identity, { ...u, id: fromHex(u.id) }, options, state);
  }

  /** Public DMLS values of a send group's current epoch (registers its PSK again, harmlessly). */
  epochValues(sendGroupId: Uint8Array, signingKey?: Uint8Array): Promise<DmlsEpochValues> {
    return turn(this.client, () =>
      this.client.atomically(async () => {
        const values = await storeEpochPsk(this.client.group(sendGroupId), this.#session.params(), signingKey);
        await this.client.psks.bind(values.pskId, sendGroupId); // goes with the group (§6.10)
        return values;
      }),
    );
  }

  get sendGroup(): Group {
    return this.#session.sendGroup;
  }

  /** Foreign send groups whose latest updated epoch is not imported yet. */
  pendingImports(): { sendGroupId: Uint8Array; epoch: number }[] {
    return Object.entries(this.#session.state.pending).map(([hex, epoch]) => ({ sendGroupId: fromHex(hex), epoch }));
  }

  /** Send groups this member receives in, by id (hex) → owner identity. */
  sendGroups(): Map<string, Uint8Array> {
    return new Map(Object.entries(this.#session.state.owners).map(([g, o]) => [g, fromHex(o)]));
  }

  bufferedCount(): number {
    return this.#session.buffer.length;
  }

  /**
   * UPDATE (seed 003 §5): an empty or full commit in the own send group.
   * With `newIdentity` (a new signature key of this client) the credential
   * changes too, and an Update proposal goes to every other send group.
   */
  update(options: { newIdentity?: Identity } = {}): Promise<Uint8Array[]> {
    return turn(this.client, () => updateOwn(this.#session, options));
  }

  /**
   * COMMIT (seed 003 §5 PROTECT rules): partial when only PSKs of others'
   * full/empty commits are pending, full when Update proposals were seen,
   * nothing otherwise. Others' partial commits are never imported.
   */
  commit(): Promise<Uint8Array[]> {
    return turn(this.client, () => commitImports(this.#session));
  }

  /** PROTECT (seed 003 §5): `commit()` (or with `pcs` an UPDATE), then encrypt in the own send group. */
  protect(data: Uint8Array, options: { pcs?: boolean } = {}): Promise<Uint8Array[]> {
    return turn(this.client, () => protectData(this.#session, data, options));
  }

  /** Ask another owner to refresh this member's leaf in its send group (an Update proposal, same credential). */
  proposeUpdate(sendGroupId: Uint8Array): Promise<Uint8Array> {
    return turn(this.client, () => this.client.group(sendGroupId).propose({ type: 'update' }));
  }

  /** Remove a member that stays offline from the own send group (with pending imports). */
  removeMember(identity: Uint8Array): Promise<Uint8Array[]> {
    return turn(this.client, () => removeFromSendGroup(this.#session, identity));
  }

  /** Stop following a send group (e.g. of a member removed everywhere). */
  forget(sendGroupId: Uint8Array): Promise<void> {
    return turn(this.client, () => forgetSendGroup(this.#session, sendGroupId));
  }

  /**
   * REJOIN (seed 003 §5): commit PSK imports of the newest epoch held of
   * every other send group (the ack owners infer from), then a rejoin
   * request with a KeyPackage per send group.
   */
  requestRejoin(): Promise<Uint8Array[]> {
    return turn(this.client, () => requestRejoin(this.#session));
  }

  /** UNPROTECT (seed 003 §5): route by group id, process, retry the buffer; §4 violations throw `DmlsError`. */
  unprotect(message: Uint8Array): Promise<DmlsEvent[]> {
    return turn(this.client, () => unprotectMessage(this.#session, message));
  }

  /** Foreign send group (hex) → last epoch imported into the own send group. */
  importedEpochs(): Map<string, number> {
    return new Map(Object.entries(this.#session.state.imported));
  }

  /** Last epoch of the own send group that carried fresh randomness. */
  get lastUpdateEpoch(): number {
    return this.#session.state.lastUpdateEpoch;
  }
}
