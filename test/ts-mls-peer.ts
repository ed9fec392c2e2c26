/**
 * A ts-mls member with the same shape of operations as a paired-mls one,
 * for live interoperability tests. Messages cross as serialized MLSMessages.
 */
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  createGroupInfoWithExternalPubAndRatchetTree,
  joinGroupExternal,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  makePskIndex,
  mlsExporter,
  processPrivateMessage,
  processPublicMessage,
  acceptAll,
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type PrivateKeyPackage,
  type Proposal,
} from 'ts-mls';

let impl: CiphersuiteImpl | undefined;
export async function suite1(): Promise<CiphersuiteImpl> {
  impl ??= await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
  return impl;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class TsMlsPeer {
  state: ClientState | undefined;
  /** External PSKs by base64 id (ts-mls' PSK index convention). */
  readonly psks: Record<string, Uint8Array> = {};

  storePsk(id: Uint8Array, secret: Uint8Array): void {
    this.psks[Buffer.from(id).toString('base64')] = secret;
  }

  private constructor(
    readonly name: string,
    readonly cs: CiphersuiteImpl,
    readonly publicPackage: KeyPackage,
    readonly privatePackage: PrivateKeyPackage,
  ) {}

  static async create(name: string): Promise<TsMlsPeer> {
    const cs = await suite1();
    const credential = { credentialType: 'basic' as const, identity: new TextEncoder().encode(name) };
    const kp = await generateKeyPackage(credential, defaultCapabilities(), defaultLifetime, [], cs);
    return new TsMlsPeer(name, cs, kp.publicPackage, kp.privatePackage);
  }

  /** This peer's KeyPackage as an MLSMessage. */
  keyPackageMessage(): Uint8Array {
    return encodeMlsMessage({ keyPackage: this.publicPackage, wireformat: 'mls_key_package', version: 'mls10' });
  }

  private pskIndex() {
    return makePskIndex(this.state, this.psks);
  }

  async createGroup(groupId: Uint8Array): Promise<void> {
    this.state = await createGroup(groupId, this.publicPackage, this.privatePackage, [], this.cs);
  }

  async join(welcome: Uint8Array): Promise<void> {
    const decoded = decodeMlsMessage(welcome, 0)![0];
    if (decoded.wireformat !== 'mls_welcome') throw new Error('expected a Welcome');
    this.state = await joinGroup(decoded.welcome, this.publicPackage, this.privatePackage, this.pskIndex(), this.cs);
  }

  /** Commit the given proposals; returns the commit and Welcome as MLSMessages. */
  async commit(proposals: Proposal[]): Promise<{ commit: Uint8Array; welcome?: Uint8Array }> {
    const result = await createCommit(
      { state: this.state!, cipherSuite: this.cs, pskIndex: this.pskIndex() },
      { extraProposals: proposals, ratchetTreeExtension: true },
    );
    this.state = result.newState;
    return {
      commit: encodeMlsMessage(result.commit),
      welcome: result.welcome ? encodeMlsMessage({ welcome: result.welcome, wireformat: 'mls_welcome', version: 'mls10' }) : undefined,
    };
  }

  addProposal(keyPackageMessage: Uint8Array): Proposal {
    const decoded = decodeMlsMessage(keyPackageMessage, 0)![0];
    if (decoded.wireformat !== 'mls_key_package') throw new Error('expected a KeyPackage');
    return { proposalType: 'add', add: { keyPackage: decoded.keyPackage } };
  }

  removeProposal(leafIndex: number): Proposal {
    return { proposalType: 'remove', remove: { removed: leafIndex } };
  }

  pskProposal(pskId: Uint8Array): Proposal {
    return {
      proposalType: 'psk',
      psk: {
        preSharedKeyId: {
          psktype: 'external',
          pskId,
          pskNonce: crypto.getRandomValues(new Uint8Array(32)),
        },
      },
    };
  }

  async encrypt(text: string): Promise<Uint8Array> {
    const r = await createApplicationMessage(this.state!, new TextEncoder().encode(text), this.cs);
    this.state = r.newState;
    return encodeMlsMessage({ privateMessage: r.privateMessage, wireformat: 'mls_private_message', version: 'mls10' });
  }

  /** Process a handshake or application message; returns the plaintext for application messages. */
  async process(message: Uint8Array): Promise<string | undefined> {
    const decoded = decodeMlsMessage(message, 0)![0];
    if (decoded.wireformat !== 'mls_private_message' && decoded.wireformat !== 'mls_public_message') {
      throw new Error(`unexpected wire format ${decoded.wireformat}`);
    }
    // ts-mls 1.6.4's processMessage hands PrivateMessages an empty PSK
    // index (processMessages.js, processMessage), so PSK commits would fail;
    // call the per-wire-format functions with the real index instead.
    if (decoded.wireformat === 'mls_public_message') {
      const r = await processPublicMessage(this.state!, decoded.publicMessage, this.pskIndex(), this.cs, acceptAll);
      this.state = r.newState;
      return undefined;
    }
    const r = await processPrivateMessage(this.state!, decoded.privateMessage, this.pskIndex(), this.cs, acceptAll);
    this.state = r.newState;
    return r.kind === 'applicationMessage' ? new TextDecoder().decode(r.message) : undefined;
  }

  /** Join by external commit from a GroupInfo MLSMessage; returns the commit to send. */
  async joinExternal(groupInfo: Uint8Array): Promise<Uint8Array> {
    const decoded = decodeMlsMessage(groupInfo, 0)![0];
    if (decoded.wireformat !== 'mls_group_info') throw new Error('expected a GroupInfo');
    const r = await joinGroupExternal(decoded.groupInfo, this.publicPackage, this.privatePackage, false, this.cs);
    this.state = r.newState;
    return encodeMlsMessage({ publicMessage: r.publicMessage, wireformat: 'mls_public_message', version: 'mls10' });
  }

  /** A GroupInfo with external_pub and the ratchet tree, as an MLSMessage. */
  async groupInfo(): Promise<Uint8Array> {
    const info = await createGroupInfoWithExternalPubAndRatchetTree(this.state!, [], this.cs);
    return encodeMlsMessage({ groupInfo: info, wireformat: 'mls_group_info', version: 'mls10' });
  }

  leafIndex(): number {
    return Number(this.state!.privatePath.leafIndex);
  }

  epochAuthenticator(): string {
    return hex(this.state!.keySchedule.epochAuthenticator);
  }

  async exporter(label: string, context: Uint8Array, length: number): Promise<string> {
    return hex(await mlsExporter(this.state!.keySchedule.exporterSecret, label, context, length, this.cs));
  }

  epoch(): bigint {
    return this.state!.groupContext.epoch;
  }
}

export { emptyPskIndex };
