/**
 * What a `Group` needs from the client that holds it, so that group.ts does
 * not import client.ts (client.ts makes Groups; a Group names its client).
 * `MlsClient` implements `GroupHost`, and client.ts merges the whole
 * `MlsClient` into `GroupClient`, so `group.client` keeps its full type.
 */
import type { Client as CoreClient } from '../../pkg/paired_mls_core.js';
import type { StorageBatch } from './storage.js';
import type { ProcessCheck } from './checks.js';

/** The calls a Group makes on its client. */
export interface GroupHost {
  /** Run a read-only core call. */
  read<T>(op: (core: CoreClient) => T): T;
  /** Run a mutating core call, then persist its batch. */
  mutate<T>(op: (core: CoreClient) => T, metaFor?: StorageBatch | ((result: T) => StorageBatch)): Promise<T>;
  /** The checks every `process` of this client runs. */
  defaultChecks(): readonly ProcessCheck[];
  /** Set the checks of one group. */
  setGroupChecks(groupId: Uint8Array, checks: ProcessCheck[]): void;
  /** The checks of one group. */
  groupChecks(groupId: Uint8Array): readonly ProcessCheck[];
}

/**
 * The type of `group.client`: the `MlsClient` that holds the group
 * (client.ts extends this interface by `MlsClient` through declaration
 * merging).
 */
export interface GroupClient extends GroupHost {}
