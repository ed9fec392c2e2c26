/**
 * `Group`: a view of one group inside an `MlsClient` (RFC 9420 §12).
 * Mutating calls persist through the client before they return.
 */
import type * as Core from '../../pkg/paired_mls_core.js';
import type { RetainedGroupState, StagedCommitHandle } from '../../pkg/paired_mls_core.js';
import type { GroupClient } from './group-host.js';
import { appDataToCore, commitOptionsToCore, compactResult, proposalToCore, reinitOptionsToCore } from './convert.js';
import { MlsError, invalidArgument } from './errors.js';
import { Resource } from './resources.js';
import { toBytes, type BytesLike } from './bytes.js';
import type { AppDataEntry, AskedToLeave, CommitOptions, CommitResult, CredentialInfo, GroupState, JoinOptions, Member, ProposalInfo, ProposalRequest, ReInitOptions, ReInitState, Sender } from './types.js';
import { checkList, composeChecks, layerDefaultChecks, runChecks, type HandshakeReport, type ProcessCheck, type SignerDevice } from './checks.js';
import { decodeApplication } from './application-result.js';
import { markReported } from './asked-to-leave.js';

/** A decrypted application message (`kind: 'application'`, sender, epoch, data, aad). */
export type ApplicationMessage = Core.ApplicationMessage;

/** A proposal, now queued for the next commit. */
export interface ProposalMessage {
  kind: 'proposal';
  sender: Sender;
  epoch: number;
  proposal: ProposalInfo;
  aad: Uint8Array;
  /** The paired device that sent it, when the sender is a standard-mode anchor (set by the device-signature check). */
  device?: SignerDevice;
}

/** A commit from another member, staged: inspect `staged`, then `merge()` or `discard()`. */
export interface CommitMessage {
  kind: 'commit';
  sender: Sender;
  epoch: number;
  aad: Uint8Array;
  /** The validated commit, to inspect and then merge or discard. */
  staged: StagedCommit;
  /** The paired device that committed, when the committer is a standard-mode anchor (set by the device-signature check). */
  device?: SignerDevice;
}

/**
 * The Delivery Service echoed one of this member's own messages back.
 * `ownCommit`: its pending commit (sent as PublicMessage) was accepted, so
 * call `mergePendingCommit()`. `ownMessage`: one of its own
 * PrivateMessages (application message, proposal or commit); a member
 * cannot decrypt its own PrivateMessages and needs not.
 */
export type OwnMessage = Core.OwnMessage;

/** An application message whose ratchet secret is kept until `confirm()`. */
export interface UnconfirmedMessage {
  message: Uint8Array;
  epoch: number;
  generation: number;
  /** Set in groups shared by virtual-client siblings: equal ids mean the same ratchet generation. */
  generationId: Uint8Array | undefined;
  confirm(): Promise<void>;
}

/** What `group.process(message)` found, told apart by `kind`. */
export type ProcessResult = ApplicationMessage | ProposalMessage | CommitMessage | OwnMessage;

/** What the core reports about a handshake message for the checks. */
type HandshakeChecks = Pick<Core.ProposalSummary, 'contentDigest' | 'authorizingDevices'>;

/** Options of `Group.process`. */
export interface ProcessOptions {
  /** Detached virtual-clients derivation info for a sibling's commit (`vcDetached`; Paired MLS: from the Notify). */
  vcDerivationInfo?: Uint8Array;
  /** Checks for this call, after the client's and the group's defaults (ts/mls/checks.ts). */
  checks?: readonly ProcessCheck[];
}

function reportOf(raw: HandshakeChecks): HandshakeReport {
  return raw.authorizingDevices ? { contentDigest: raw.contentDigest, authorizingDevices: raw.authorizingDevices } : { contentDigest: raw.contentDigest };
}

type StagedCommitView = Core.StagedCommitSummary;

/**
 * A commit from another member, validated but not applied. Inspect what
 * it does, then `merge()` it or `discard()` it.
 */
export class StagedCommit extends Resource<StagedCommitHandle> {
  readonly committer: Sender;
  readonly epoch: number;
  readonly newEpoch: number;
  /** Every proposal the commit covers, with its proposer. */
  readonly proposals: readonly { sender: Sender; proposal: ProposalInfo }[];
  /** Whether the committer sent an UpdatePath (its leaf was refreshed). */
  readonly hasPath: boolean;
  /** Credential of the UpdatePath's leaf: the committer's (for an external commit, the joiner's). */
  readonly pathCredential: CredentialInfo | undefined;
  /** Whether this member is removed by the commit. */
  readonly selfRemoved: boolean;
  /** Leaves the commit's LeafOperationProposals remove. */
  readonly impliedRemoves: readonly number[];
  /** Pending requests to remove this member the commit does not carry (docs/PROTOCOL.md §5.4). */
  readonly askedToLeave: readonly AskedToLeave[] | undefined;
  readonly #group: Group;

  /** @internal */
  constructor(group: Group, handle: StagedCommitHandle, view: StagedCommitView) {
    super(handle);
    this.#group = group;
    this.committer = view.sender;
    this.epoch = view.epoch;
    this.newEpoch = view.newEpoch;
    this.proposals = view.proposals;
    this.hasPath = view.hasPath;
    this.pathCredential = view.pathCredential ?? undefined;
    this.selfRemoved = view.selfRemoved;
    this.impliedRemoves = view.impliedRemoves;
    this.askedToLeave = markReported(view.askedToLeave, group.client, group.id);
  }

  get adds() {
    return this.#of('add');
  }
  get removes() {
    return this.#of('remove');
  }
  get updates() {
    return this.#of('update');
  }
  get psks() {
    return this.#of('preSharedKey');
  }
  get selfRemoves() {
    return this.#of('selfRemove');
  }
  get custom() {
    return this.#of('custom');
  }

  #of<T extends ProposalInfo['type']>(type: T): Extract<ProposalInfo, { type: T }>[] {
    return this.proposals.map((p) => p.proposal).filter((p): p is Extract<ProposalInfo, { type: T }> => p.type === type);
  }

  /** Apply the commit: the group moves to `newEpoch`. */
  async merge(): Promise<void> {
    const handle = this.inner;
    try {
      await this.#group.client.mutate((core) => core.mergeStagedCommit(handle));
    } finally {
      this.free();
    }
  }

  /** Drop the commit; the group stays in its epoch. */
  discard(): void {
    // Through the core, which keeps the group's tree hashes for its next
    // load (docs/ENGINE.md change 13) and wipes the commit's secrets.
    try {
      if (!this.released && !this.#group.client.released) {
        const handle = this.inner;
        this.#group.client.read((core) => core.discardStagedCommit(handle));
      }
    } finally {
      this.free();
    }
  }
}

/** A group's state kept inside the core (`Group.retainState`); `free()` wipes it. */
export class RetainedState extends Resource<RetainedGroupState> {
  /** @internal */
  constructor(handle: RetainedGroupState) {
    super(handle);
  }

  /** @internal */
  get handle(): RetainedGroupState {
    return this.inner;
  }
}

/** One MLS group of a client: commit, propose, process, encrypt, and its state (epoch, members, exporter). From `createGroup` or a join. */
export class Group {
  /** @internal */
  readonly client: GroupClient;
  readonly id: Uint8Array;

  /** @internal use `MlsClient.group()` */
  constructor(client: GroupClient, groupId: Uint8Array) {
    this.client = client;
    this.id = groupId;
  }

  /** Epoch, ciphersuite, own leaf, pending state. */
  state(): GroupState {
    return this.client.read((core) => core.groupState(this.id));
  }

  /** The options this member keeps the group with (wire format, ratchets, its leaf's capabilities): pass them to rejoin it by external commit unchanged. */
  joinOptions(): JoinOptions {
    return this.client.read((core) => core.joinOptions(this.id)) as JoinOptions;
  }

  get epoch(): number {
    return this.state().epoch;
  }

  get ownLeafIndex(): number {
    return this.state().ownLeafIndex;
  }

  /** Current members (blank leaves left out), each with leaf index, credential, signature and encryption key. Builds every member: for one leaf, `member(leafIndex)`. */
  members(): Member[] {
    return this.client.read((core) => core.members(this.id));
  }

  /**
   * The member at `leafIndex`, exactly as `members()` lists it; undefined
   * for a blank leaf or an index past the tree. Reads that one leaf, not the
   * whole member list. `INVALID_ARGUMENT` when `leafIndex` is not an integer
   * 0..2^32-1.
   */
  member(leafIndex: number): Member | undefined {
    if (!Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex > 0xffffffff) throw invalidArgument('leafIndex must be an integer between 0 and 4294967295');
    return this.client.read((core) => core.memberAt(this.id, leafIndex));
  }

  /** This client's own member (`member(ownLeafIndex)`): its credential and keys as the group lists them; undefined when the group no longer lists it. */
  ownLeaf(): Member | undefined {
    return this.client.read((core) => core.memberAt(this.id));
  }

  /** RFC 9420 §8.7. Equal for all members of an epoch. */
  epochAuthenticator(): Uint8Array {
    return this.client.read((core) => core.epochAuthenticator(this.id));
  }

  /** MLS-Exporter(label, context, length), RFC 9420 §8.5. */
  exportSecret(label: string, context: BytesLike, length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 1 || length > 16320) throw invalidArgument('length must be 1..16320');
    return this.client.read((core) => core.exportSecret(this.id, label, toBytes(context), length));
  }

  /** Signed GroupInfo for external joiners. */
  exportGroupInfo(options: { ratchetTree?: boolean } = {}): Promise<Uint8Array> {
    return this.client.mutate((core) => core.exportGroupInfo(this.id, options.ratchetTree ?? true));
  }

  exportRatchetTree(): Uint8Array {
    return this.client.read((core) => core.exportRatchetTree(this.id));
  }

  /**
   * Create a commit. It stays pending until `mergePendingCommit()` (call it
   * once the Delivery Service accepted the commit) or `clearPendingCommit()`;
   * with `options.send`, it is sent and merged in one storage write.
   */
  async commit(options: CommitOptions = {}): Promise<CommitResult> {
    const { send, ...rest } = options;
    if (send !== undefined) {
      if (typeof send !== 'function') throw invalidArgument('send must be a function');
      // One write whatever happens (client.writeOnce): when send throws,
      // the commit is cleared but its handshake ratchet step is kept, since
      // the commit may have reached the DS; rolling it back would make the
      // next commit reuse its generation.
      return this.client.writeOnce(async (hold) => {
        const result = compactResult(hold((core) => core.commit(this.id, commitOptionsToCore(rest))), this.client, this.id);
        try {
          await send(result);
        } catch (err) {
          hold((core) => core.clearPendingCommit(this.id));
          throw err;
        }
        hold((core) => core.mergePendingCommit(this.id));
        return result;
      });
    }
    const spec = commitOptionsToCore(options);
    const out = (await this.client.mutate((core) => core.commit(this.id, spec)));
    return compactResult(out, this.client, this.id);
  }

  /** Commit a full-path self-update (post-compromise security, RFC 9420 §16.6). */
  selfUpdate(options: Omit<CommitOptions, 'selfUpdate'> = {}): Promise<CommitResult> {
    return this.commit({ ...options, selfUpdate: true });
  }

  /**
   * Commit a ReInit (RFC 9420 §11.2) as the commit's only proposal, after
   * checking that every member's leaf lists the new version and
   * ciphersuite (`REINIT_UNSUPPORTED` otherwise). Merging it (own:
   * `mergePendingCommit`, received: `StagedCommit.merge`) retires the
   * group: every later call that would use it fails with
   * `GROUP_REINITIALIZED`; continue with `MlsClient.createReInitSuccessor`
   * or `MlsClient.joinReInitSuccessor`. The result carries the GroupInfo
   * of the epoch the commit creates (a verifying DS needs it); the retired
   * group exports none afterwards.
   */
  async commitReInit(options: ReInitOptions): Promise<CommitResult> {
    const spec = reinitOptionsToCore(options);
    const out = await this.client.mutate((core) => core.commitReInit(this.id, spec));
    return compactResult(out, this.client, this.id);
  }

  /** The ReInit that retired this group, or `undefined` while it is in use. */
  reinitState(): ReInitState | undefined {
    return this.client.read((core) => core.reinitState(this.id));
  }

  mergePendingCommit(): Promise<void> {
    return this.client.mutate((core) => core.mergePendingCommit(this.id));
  }

  clearPendingCommit(): Promise<void> {
    return this.client.mutate((core) => core.clearPendingCommit(this.id));
  }

  /** Drop every queued proposal that no commit has covered yet. */
  clearPendingProposals(): Promise<void> {
    return this.client.mutate((core) => core.clearPendingProposals(this.id));
  }

  /** Send one standalone proposal; returns the message to deliver. */
  async propose(request: ProposalRequest, options: { aad?: Uint8Array } = {}): Promise<Uint8Array> {
    return (await this.proposeDetailed(request, options)).message;
  }

  /**
   * @internal `propose`, also returning the proposal's reference and
   * content digest (what a paired device signs in standard mode).
   */
  async proposeDetailed(request: ProposalRequest, options: { aad?: Uint8Array } = {}): Promise<{ message: Uint8Array; proposalRef?: Uint8Array; contentDigest?: Uint8Array }> {
    const spec = proposalToCore(request);
    const out = await this.client.mutate((core) => core.propose(this.id, spec, options.aad));
    return { message: out.message, proposalRef: out.proposalRef ?? undefined, contentDigest: out.contentDigest ?? undefined };
  }

  /** Drop one queued proposal (own or received) by its reference. */
  removePendingProposal(proposalRef: Uint8Array): Promise<void> {
    return this.client.mutate((core) => core.removePendingProposal(this.id, proposalRef));
  }

  /** @internal Content digest of the pending commit (Paired MLS standard mode). */
  pendingCommitDigest(): Uint8Array {
    return this.client.read((core) => core.pendingCommitDigest(this.id));
  }

  /**
   * The leaves a custom proposal removes in this epoch, as the client's
   * proposal expander says (for a LeafOperationIntent: its checks, then
   * the sender and, for `removeAssociatedMembers`, its associated members);
   * `[]` for a type no expander knows. Throws the expander's refusal.
   */
  removedLeaves(proposal: { proposalType: number; payload: Uint8Array }): number[] {
    const { proposalType, payload } = proposal ?? {};
    // Wasm would truncate the type to 16 bits (0x1F1A0 read as 0xF1A0).
    if (!Number.isInteger(proposalType) || proposalType < 0 || proposalType > 0xffff) throw invalidArgument('proposalType must be an integer between 0 and 65535');
    if (!(payload instanceof Uint8Array)) throw invalidArgument('payload must be a Uint8Array');
    return Array.from(this.client.read((core) => core.removedLeaves(this.id, proposalType, payload)));
  }

  /** The AppDataDictionary entry `componentId` of the leaf at `leafIndex`, if any. */
  leafAppData(leafIndex: number, componentId: number): Uint8Array | undefined {
    return this.client.read((core) => core.leafAppData(this.id, leafIndex, componentId)) ?? undefined;
  }

  /**
   * The LeafNode at `leafIndex`, serialized, and where it came from
   * (`keyPackage`: still the KeyPackage's leaf; `update`; `commit`).
   */
  leafNode(leafIndex: number): Core.LeafNodeInfo {
    return this.client.read((core) => core.leafNode(this.id, leafIndex));
  }

  /**
   * Keep this group's current state inside the core, to go back to with
   * `restoreState` (fork handling, docs/PROTOCOL.md §7.1). It holds the
   * epoch's secrets, which never leave wasm memory; `free()` wipes them —
   * keep it for a bounded time.
   */
  retainState(): RetainedState {
    return new RetainedState(this.client.read((core) => core.retainGroupState(this.id)));
  }

  /** Put this group back to a state `retainState()` kept (another group's is refused). */
  async restoreState(retained: RetainedState): Promise<void> {
    const handle = retained.handle;
    await this.client.mutate((core) => core.restoreRetainedGroupState(this.id, handle));
  }

  /** Ask to leave: a SelfRemove proposal another member commits. */
  leave(): Promise<Uint8Array> {
    return this.propose({ type: 'selfRemove' });
  }

  /** Encrypt an application message. */
  encrypt(plaintext: BytesLike, options: { aad?: Uint8Array } = {}): Promise<Uint8Array> {
    return this.client.mutate((core) => core.encrypt(this.id, toBytes(plaintext), options.aad));
  }

  /**
   * Virtual clients: register this (emulation) group's current epoch as an
   * emulation epoch and return its id. Idempotent within an epoch.
   */
  registerEmulationEpoch(): Promise<Uint8Array> {
    return this.client.mutate((core) => core.registerEmulationEpoch(this.id));
  }

  /**
   * Virtual clients: move this member's leaf onto a virtual-client leaf of
   * emulation epoch `epochId` with a resync external commit. Returns the
   * commit (pending until `mergePendingCommit()`), the GroupInfo of the
   * epoch before it, which a sibling needs to replay the commit, and the
   * commit's content digest (docs/PROTOCOL.md §4.12). `dryRun` builds the
   * commit only to learn the digest and changes nothing; `expectDigest`
   * refuses (`DEVICE_SIGNATURE`, nothing changed) a commit whose digest
   * differs — the two builds of a device-signed resync.
   */
  async resyncAsVirtualClient(
    epochId: Uint8Array,
    options: { aad?: Uint8Array; leafAppData?: AppDataEntry[]; dryRun?: boolean; expectDigest?: Uint8Array } = {},
  ): Promise<{ commit: Uint8Array; groupInfo: Uint8Array; contentDigest: Uint8Array }> {
    const leafAppData = appDataToCore(options.leafAppData);
    const out = await this.client.mutate((core) =>
      core.resyncAsVirtualClient(this.id, epochId, options.aad, leafAppData, options.dryRun ?? false, options.expectDigest),
    );
    return { commit: out.commit, groupInfo: out.groupInfo, contentDigest: out.contentDigest };
  }

  /**
   * Encrypt, keeping the message's ratchet secret until `confirm()` (call
   * it once the Delivery Service accepted the message). Paired devices
   * share their leaf's ratchet: when the DS rejects a message because the
   * sibling used the same generation first (`generationId` is equal), the
   * device processes the sibling's message, which still decrypts, and sends
   * again.
   */
  async encryptUnconfirmed(plaintext: BytesLike, options: { aad?: Uint8Array } = {}): Promise<UnconfirmedMessage> {
    const out = await this.client.mutate((core) => core.encryptUnconfirmed(this.id, toBytes(plaintext), options.aad));
    return {
      message: out.message,
      epoch: out.epoch,
      generation: out.generation,
      generationId: out.generationId ?? undefined,
      confirm: () => this.client.mutate((core) => core.confirmApplicationMessage(this.id, BigInt(out.epoch), out.generation)),
    };
  }

  /**
   * Make `checks` this group's default process checks (they run after the
   * client's defaults on every `process` of this group, in this client,
   * until replaced; ts/mls/checks.ts). Not persisted: set them again after
   * reopening the client.
   */
  useChecks(checks: readonly ProcessCheck[]): void {
    this.client.setGroupChecks(this.id, checkList(checks));
  }

  /** The process checks in force for this group, in running order. */
  checks(extra: readonly ProcessCheck[] = []): ProcessCheck[] {
    return composeChecks(layerDefaultChecks(), this.client.defaultChecks(), this.client.groupChecks(this.id), checkList(extra));
  }

  /**
   * Process any message of this group. A received proposal or commit then
   * goes through the process checks in force (`checks()`, plus
   * `options.checks`; docs/PROTOCOL.md §1.3) when its turn in the client's
   * queue of calls comes, after the calls made before it: a refusal throws the check's
   * typed error, drops the proposal from the queue or discards the staged
   * commit, and leaves the group in its epoch. `vcDerivationInfo`: a
   * sibling virtual client's commit made with `vcDetached` needs the
   * derivation info the sibling handed over (Paired MLS: in its Notify).
   * Before the process checks, the core refuses a commit or Update proposal
   * that gives a leaf a credential of another type or identity
   * (`CREDENTIAL_CHANGED`, RFC 9420 §5.3.1, docs/PROTOCOL.md §8.4; a
   * resync's new leaf is held to the leaf it removes, after the core's
   * resync key rule, so an outsider's removal keeps that rule's
   * `INVALID_COMMIT`): nothing is queued or staged.
   */
  async process(message: Uint8Array, options: ProcessOptions = {}): Promise<ProcessResult> {
    // Extra checks are validated before processing (a bad one throws first);
    // the composed list is only needed for a proposal or a commit.
    const extra = options.checks === undefined ? undefined : checkList(options.checks);
    const raw = await this.client.mutate((core) => core.process(this.id, message, options.vcDerivationInfo));
    // The core hands a received application message over flat (bytes);
    // everything else as a view object with a `kind`.
    if (ArrayBuffer.isView(raw)) return decodeApplication(raw as Uint8Array);
    if (raw.kind === 'application' || raw.kind === 'ownMessage' || raw.kind === 'ownCommit') return raw;
    const checks = this.checks(extra);
    if (raw.kind === 'proposal') {
      const { proposalRef, contentDigest: _, authorizingDevices: __, ...proposal } = raw;
      try {
        const { device } = await runChecks(checks, { ...proposal, kind: 'proposal', group: this, report: reportOf(raw) });
        return device ? { ...proposal, device } : proposal;
      } catch (err) {
        await this.removePendingProposal(proposalRef);
        throw err;
      }
    }
    if (raw.kind !== 'commit') throw new MlsError('INTERNAL', 'unknown process result');
    const staged = new StagedCommit(this, raw.handle, raw);
    let device: SignerDevice | undefined;
    try {
      ({ device } = await runChecks(checks, { kind: 'commit', group: this, sender: raw.sender, epoch: raw.epoch, aad: raw.aad, report: reportOf(raw), staged }));
    } catch (err) {
      staged.discard();
      throw err;
    }
    const result: CommitMessage = { kind: 'commit', sender: raw.sender, epoch: raw.epoch, aad: raw.aad, staged };
    return device ? { ...result, device } : result;
  }
}

// Checks (checks.ts) name the group and staged commit they inspect through
// these interfaces, which import nothing; here they become Group and
// StagedCommit.
declare module './checked-group.js' {
  interface CheckedGroup extends Group {}
  interface CheckedStagedCommit extends StagedCommit {}
}
