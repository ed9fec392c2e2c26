/**
 * The shapes `DMember` takes and returns (docs/PROTOCOL.md §6): the
 * universe, how it is founded, a member's options, and the events of
 * `unprotect`.
 */
import type { GroupOptions } from '../mls/types.js';
import type { DmlsCredentialCheck } from './credential-check.js';
import type { DmlsEquivocationError } from './dmls-error.js';
import type { DmlsProfile } from './dmls-profile.js';

/** A universe (seed 003 §2, §6), fixed when founded. */
export interface UniverseConfig {
  /** Universe identifier: under `multi-mls` the founder's send group id (seed 003 §6.1). */
  id: Uint8Array;
  /** DMLS profile (default `multi-mls`). */
  profile?: DmlsProfile;
  /** Common export key length (seed 003 §6; 32 under `distributed-mls`). */
  exportLength: number;
  /** Ciphersuites accepted for send groups. */
  ciphersuites: number[];
}

/** How a universe is founded (seed 003 §6.1). */
export interface FoundingOptions {
  profile?: DmlsProfile;
  /** Default 32 (KDF.Nh of suites 1–3). */
  exportLength?: number;
  /** Default: the founder's ciphersuite only. */
  ciphersuites?: number[];
}

/** Options of a DMember. */
export interface DmlsOptions {
  /**
   * PSKs kept per send group, own included, and kind — epochs with fresh
   * randomness, and the others (which only REJOIN acks name): each kind
   * its own budget (docs/PROTOCOL.md §6.5). Older epochs can no longer be
   * imported or acknowledged. Default 16.
   */
  pskRetention?: number;
  /**
   * Messages buffered per followed send group while they cannot be
   * processed (the one farthest ahead goes first), and as many for groups
   * not joined yet together (the oldest first). Default 1,000.
   */
  maxBuffered?: number;
  /** The same budgets in bytes (a message of the DS's largest size each took a GiB). Default 16 MiB. */
  maxBufferedBytes?: number;
  /** A message more epochs than this ahead of its send group is dropped (`too-far-ahead`; not while a rejoin is asked). Default 16. */
  maxEpochsAhead?: number;
  /** Options of the own send group (defaults suit a reordering transport); not `groupId`, which is random or bound (docs/PROTOCOL.md §6.1). */
  sendGroup?: GroupOptions;
  /**
   * The application's Authentication Service, binding identity → signature
   * key (e.g. `AuthenticationService` or `AuthenticationDirectory` of
   * `paired-mls/services`). When given, every credential this member
   * accepts is checked with it and refused otherwise (`DmlsError`
   * `credential`; which credentials: docs/PROTOCOL.md §6.10). It should throw when the AS
   * does not answer (an answer later than `credentialCheckTimeoutMs` fails
   * as `check-timeout`) and not call this member: its other calls wait for
   * it (one made before the check's first await is thrown at once,
   * `reentrant-check`; one after it waits until the check times out). Without it a basic
   * credential is taken for what it names, and a forger claiming a
   * member's identity under its own key is accepted where no key of that
   * member was seen yet (§6.10 says what is trusted then). Not saved: pass
   * it to `open` again. Every member of a universe should use the same AS:
   * an owner without it may commit a leaf the others refuse, and its send
   * group then stalls for them. Required in a universe accepting several
   * ciphersuites (`INVALID_ARGUMENT` without it; docs/PROTOCOL.md §6.1).
   */
  credentialCheck?: DmlsCredentialCheck;
  /** An answer of `credentialCheck` taking longer fails as a check failure (`check-timeout`). Default 30,000 ms. */
  credentialCheckTimeoutMs?: number;
}

/** What `unprotect` made of a message (and of buffered ones it unblocked). */
export type DmlsEvent =
  | { type: 'data'; sendGroupId: Uint8Array; sender: Uint8Array; data: Uint8Array }
  | { type: 'commit'; sendGroupId: Uint8Array; epoch: number; imported: boolean }
  | { type: 'joined'; sendGroupId: Uint8Array }
  | { type: 'announce'; sendGroupId: Uint8Array; owner: Uint8Array }
  /** A rejoin request this owner answered (`messages` to send) or had nothing to do for (`behind` false). */
  | { type: 'rejoinRequest'; from: Uint8Array; behind: boolean; messages: Uint8Array[] }
  | { type: 'updateProposal'; sendGroupId: Uint8Array }
  | { type: 'buffered' }
  /**
   * A buffered message whose retry failed for a reason outside DMLS (e.g.
   * `credentialCheck` threw: the Authentication Service cannot be reached).
   * It stays buffered and is retried with the next delivery; the events of
   * the messages processed before it are reported with this one.
   */
  | { type: 'deferred'; error: unknown }
  /** A buffered commit refused when retried: the epoch it imports differs from the one this member reached since (docs/PROTOCOL.md §6.11). Dropped. */
  | { type: 'equivocation'; error: DmlsEquivocationError }
  /** `unknown-group`: of no followed send group, and none is expected; `too-far-ahead`: `maxEpochsAhead` (docs/PROTOCOL.md §6.7). */
  | { type: 'dropped'; reason: 'duplicate' | 'not-for-us' | 'buffer-full' | 'unknown-group' | 'too-far-ahead' };
