/**
 * Translation of public option objects to the core's input specs, typed by
 * the declarations generated from their Rust structs (tsify; crates/core/
 * src/config.rs, group.rs, app_data.rs), so a field the core does not
 * take fails the type check here.
 */
import { markReported } from './asked-to-leave.js';
import type { AppDataEntry, CommitOptions, CommitResult, GroupContextExtensions, GroupOptions, JoinOptions, ProposalRequest, ReInitOptions } from './types.js';
import { invalidArgument } from './errors.js';
import type * as Core from '../../pkg/paired_mls_core.js';

/**
 * The `keys` of `given` that are its own properties (undefined where only
 * inherited, or when `given` is no object): a polluted Object.prototype
 * must not set an option (a storage adapter, `encryption: false`).
 */
export function ownOptions<T extends object, K extends keyof T>(given: T | null | undefined, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) out[key] = (given !== null && typeof given === 'object' && Object.hasOwn(given, key) ? given[key] : undefined) as T[K];
  return out;
}

/** Drop undefined fields: the core rejects unknown and ill-typed ones. */
export function compact<T extends object>(value: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}

function checkUint(name: string, value: number | undefined, max = 0xffffffff): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > max)) {
    throw invalidArgument(`${name} must be an integer between 0 and ${max}`);
  }
}

export function extensionsToCore(ext: GroupContextExtensions | undefined): Core.GroupContextExtensionsSpec | undefined {
  if (!ext) return undefined;
  return compact({
    requiredCapabilities: ext.requiredCapabilities ? compact(ext.requiredCapabilities) : undefined,
    externalSenders: ext.externalSenders,
    custom: ext.custom,
  });
}

export function joinOptionsToCore(options: JoinOptions = {}): Core.GroupConfig {
  checkUint('outOfOrderTolerance', options.outOfOrderTolerance);
  checkUint('maximumForwardDistance', options.maximumForwardDistance);
  checkUint('paddingSize', options.paddingSize, 0xffff);
  checkUint('maxPastEpochs', options.maxPastEpochs, 0xffff);
  checkUint('numberOfResumptionPsks', options.numberOfResumptionPsks, 0xffff);
  return compact({
    wireFormat: options.wireFormat,
    useRatchetTreeExtension: options.ratchetTreeExtension,
    outOfOrderTolerance: options.outOfOrderTolerance,
    maximumForwardDistance: options.maximumForwardDistance,
    paddingSize: options.paddingSize,
    maxPastEpochs: options.maxPastEpochs,
    numberOfResumptionPsks: options.numberOfResumptionPsks,
    capabilities: options.capabilities ? compact(options.capabilities) : undefined,
  });
}

export function groupOptionsToCore(options: GroupOptions = {}): Core.GroupConfig {
  checkUint('ciphersuite', options.ciphersuite, 0xffff);
  return compact({
    ...joinOptionsToCore(options),
    groupId: options.groupId,
    ciphersuite: options.ciphersuite,
    extensions: extensionsToCore(options.extensions),
  });
}

export function commitOptionsToCore(options: CommitOptions = {}): Core.CommitSpec {
  for (const leaf of options.remove ?? []) checkUint('remove[]', leaf);
  checkUint('skipProposalsFrom', options.skipProposalsFrom);
  for (const c of options.custom ?? []) checkUint('custom[].proposalType', c.proposalType, 0xffff);
  return compact({
    adds: options.add,
    removes: options.remove,
    psks: options.psks,
    groupContextExtensions: extensionsToCore(options.groupContextExtensions),
    custom: options.custom,
    selfUpdate: options.selfUpdate,
    includePending: options.includePending,
    skipProposalsFrom: options.skipProposalsFrom,
    groupInfo: options.groupInfo,
    aad: options.aad,
    vcEpochId: options.vcEpochId,
    vcDetached: options.vcDetached,
    retainOwnSecret: options.retainOwnSecret,
    newSigner: options.newSigner ? { identity: options.newSigner.identity, publicKey: options.newSigner.signaturePublicKey } : undefined,
    leafAppData: appDataToCore(options.leafAppData),
  });
}

export function appDataToCore(entries: AppDataEntry[] | undefined): Core.AppDataEntrySpec[] | undefined {
  if (!entries) return undefined;
  return entries.map((e) => {
    checkUint('leafAppData[].componentId', e.componentId, 0xffff);
    return { componentId: e.componentId, data: e.data };
  });
}

export function proposalToCore(request: ProposalRequest): Core.ProposalSpec {
  switch (request.type) {
    case 'groupContextExtensions':
      return { type: request.type, extensions: extensionsToCore(request.extensions) ?? {} };
    case 'remove':
      checkUint('leafIndex', request.leafIndex);
      return { ...request };
    case 'custom':
      checkUint('proposalType', request.proposalType, 0xffff);
      return { ...request };
    default:
      return { ...request };
  }
}

/** A core commit output without its absent fields (what `Group.commit` and the device-signed commit return). */
export function compactResult(out: CommitResult, client: object, groupId: Uint8Array): CommitResult {
  const result: CommitResult = { commit: out.commit };
  if (out.welcome) result.welcome = out.welcome;
  if (out.groupInfo) result.groupInfo = out.groupInfo;
  if (out.vcDerivationInfo) result.vcDerivationInfo = out.vcDerivationInfo;
  const asked = markReported(out.askedToLeave, client, groupId);
  if (asked) result.askedToLeave = asked as CommitResult['askedToLeave'];
  return result;
}

/** The core's `commitReInit` spec (generated from crates/core/src/ext/reinit.rs) for these options. */
export function reinitOptionsToCore(options: ReInitOptions): Core.ReInitSpec {
  return {
    ciphersuite: options.ciphersuite,
    ...compact({ groupId: options.groupId, version: options.version, extensions: extensionsToCore(options.extensions), aad: options.aad }),
  };
}
