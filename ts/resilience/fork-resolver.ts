/**
 * Forks on an eventually consistent Delivery Service (MLS architecture
 * §5.2.2; docs/PROTOCOL.md §7.1): two members commit for the same epoch and
 * members receive the commits in different orders. Both strategies the
 * architecture lists, with one deterministic tie-break:
 *
 *   among competing commits for one epoch, the one whose MLSMessage has the
 *   lowest SHA-256 (compared as bytes) wins.
 *
 * - `hold`: after the first commit for an epoch arrives (or is sent), hold
 *   sending for `windowMs`, collect the competitors, then apply the winner.
 * - `optimistic`: apply the first commit at once but keep the previous
 *   epoch's group state for `windowMs`; if a competitor that wins the
 *   tie-break arrives in time, go back and apply it instead. The kept state
 *   is wiped when the window closes (forward secrecy).
 */
import type { CommitResult, CommitOptions } from '../mls/types.js';
import type { Group, ProcessResult, RetainedState } from '../mls/group.js';
import { sha256, toHex } from '../mls/bytes.js';
import { readMlsHeader } from '../codec/mls-header.js';

/** Wait for the winning commit (hold) or apply the first and switch if another wins (optimistic). */
export type ForkStrategy = 'hold' | 'optimistic';

/** Options of a ForkResolver. */
export interface ForkOptions {
  strategy: ForkStrategy;
  /** How long competitors are awaited (hold) or the old state is kept (optimistic). */
  windowMs: number;
  /** Clock (tests pass a simulated one). */
  now?: () => number;
}

/** What a ForkResolver did with a message. */
export type ForkEvent =
  | { type: 'processed'; result: ProcessResult }
  | { type: 'candidate'; epoch: number }
  | { type: 'settled'; epoch: number; winner: string; ownCommitWon: boolean }
  | { type: 'switched'; epoch: number; winner: string; ownCommitLost: boolean }
  | { type: 'lostRace'; epoch: number }
  | { type: 'dropped'; reason: 'losing-commit' | 'stale' };

/** Rank of a commit under the tie-break: hex of SHA-256 (lower wins). */
export async function commitRank(commit: Uint8Array): Promise<string> {
  return toHex(await sha256(commit));
}

/** Welcomes follow the winning commit only (architecture §5.2.3): pick the Welcome of the lowest-ranked commit. */
export async function pickWelcome(candidates: { commit: Uint8Array; welcome: Uint8Array }[]): Promise<Uint8Array | undefined> {
  let best: { rank: string; welcome: Uint8Array } | undefined;
  for (const c of candidates) {
    const rank = await commitRank(c.commit);
    if (!best || rank < best.rank) best = { rank, welcome: c.welcome };
  }
  return best?.welcome;
}

interface HoldWindow {
  epoch: number;
  deadline: number;
  candidates: Map<string, { commit: Uint8Array; own: boolean }>;
}

interface OptimisticWindow {
  /** Epoch the competing commits start from. */
  epoch: number;
  deadline: number;
  winner: string;
  ownWinner: boolean;
  /** The state before the winner, kept inside the core; `free()` wipes it. */
  snapshot: RetainedState;
}

/** Processes a group's messages under eventually consistent delivery, resolving competing commits for one epoch (docs/PROTOCOL.md §7.1). */
export class ForkResolver {
  readonly group: Group;
  readonly #options: Required<ForkOptions>;
  #hold: HoldWindow | undefined;
  #optimistic: OptimisticWindow | undefined;
  /** Ranks of commits already decided, so late copies are dropped. */
  readonly #decided = new Set<string>();

  constructor(group: Group, options: ForkOptions) {
    this.group = group;
    this.#options = { now: () => Date.now(), ...options };
  }

  /** Hold strategy: no sending while competitors are awaited. */
  canSend(): boolean {
    return this.#hold === undefined;
  }

  /** Group state kept for a possible switch (optimistic), 0 or 1. */
  retainedStates(): number {
    return this.#optimistic ? 1 : 0;
  }

  /** Commit as a candidate for the current epoch. */
  async commit(options: CommitOptions = {}): Promise<CommitResult> {
    if (!this.canSend()) throw new Error('sending is held until the fork window closes (tick())');
    const epoch = this.group.epoch;
    if (this.#options.strategy === 'hold') {
      const out = await this.group.commit(options);
      const rank = await commitRank(out.commit);
      this.#openHold(epoch).candidates.set(rank, { commit: out.commit, own: true });
      return out;
    }
    await this.#closeOptimistic();
    const snapshot = this.group.retainState();
    const out = await this.group.commit(options);
    await this.group.mergePendingCommit();
    const rank = await commitRank(out.commit);
    this.#optimistic = { epoch, deadline: this.#options.now() + this.#options.windowMs, winner: rank, ownWinner: true, snapshot };
    return out;
  }

  /** Process any message of the group, resolving competing commits. */
  async receive(message: Uint8Array): Promise<ForkEvent[]> {
    await this.tick();
    const header = readMlsHeader(message);
    // Commits are recognised by the clear header (content_type, RFC 9420 §6).
    const isCommit = header?.contentType === 3;
    if (!isCommit) return [{ type: 'processed', result: await this.group.process(message) }];
    const rank = await commitRank(message);
    if (this.#decided.has(rank)) return [{ type: 'dropped', reason: 'stale' }];
    const epoch = Number(header!.epoch);
    return this.#options.strategy === 'hold' ? this.#receiveHold(message, rank, epoch) : this.#receiveOptimistic(message, rank, epoch);
  }

  /** Close windows whose time is up: settle (hold) or wipe the kept state (optimistic). */
  async tick(): Promise<ForkEvent[]> {
    const now = this.#options.now();
    if (this.#hold && now >= this.#hold.deadline) return this.#settle();
    if (this.#optimistic && now >= this.#optimistic.deadline) await this.#closeOptimistic();
    return [];
  }

  // --- hold -----------------------------------------------------------------

  #openHold(epoch: number): HoldWindow {
    this.#hold ??= { epoch, deadline: this.#options.now() + this.#options.windowMs, candidates: new Map() };
    return this.#hold;
  }

  async #receiveHold(commit: Uint8Array, rank: string, epoch: number): Promise<ForkEvent[]> {
    if (epoch !== this.group.epoch) return [{ type: 'dropped', reason: epoch < this.group.epoch ? 'losing-commit' : 'stale' }];
    const window = this.#openHold(epoch);
    if (!window.candidates.has(rank)) window.candidates.set(rank, { commit, own: false });
    return [{ type: 'candidate', epoch }];
  }

  async #settle(): Promise<ForkEvent[]> {
    const window = this.#hold!;
    this.#hold = undefined;
    const ranked = [...window.candidates].sort(([a], [b]) => (a < b ? -1 : 1));
    for (const rank of window.candidates.keys()) this.#decided.add(rank);
    const hadOwn = ranked.some(([, c]) => c.own);
    // The lowest-ranked candidate that is a commit this member applies
    // wins: one that does not process (a forged copy of a commit ranks
    // lower after a few tries) is passed over, not taken as the winner.
    for (const [winner, entry] of ranked) {
      if (entry.own) {
        await this.group.mergePendingCommit();
        return [{ type: 'settled', epoch: window.epoch, winner, ownCommitWon: true }];
      }
      let r: ProcessResult;
      try {
        r = await this.group.process(entry.commit);
      } catch {
        continue;
      }
      if (r.kind !== 'commit') continue;
      const events: ForkEvent[] = [];
      if (hadOwn) {
        await this.group.clearPendingCommit();
        events.push({ type: 'lostRace', epoch: window.epoch });
      }
      await r.staged.merge();
      events.push({ type: 'settled', epoch: window.epoch, winner, ownCommitWon: false });
      return events;
    }
    return [];
  }

  // --- optimistic -----------------------------------------------------------

  async #receiveOptimistic(commit: Uint8Array, rank: string, epoch: number): Promise<ForkEvent[]> {
    const window = this.#optimistic;
    if (window && epoch === window.epoch) {
      // A competitor for the epoch we already moved on from.
      if (rank > window.winner) {
        this.#decided.add(rank);
        return [{ type: 'dropped', reason: 'losing-commit' }];
      }
      // A competitor that fails once the kept epoch is back (a forged copy
      // of a commit ranks lower after a few tries) puts the group back
      // where it was, not in the epoch everyone else left.
      const current = this.group.retainState();
      try {
        await this.group.restoreState(window.snapshot);
        const r = await this.group.process(commit);
        if (r.kind !== 'commit') throw new Error('the competing message is not a commit');
        await r.staged.merge();
      } catch (err) {
        await this.group.restoreState(current);
        throw err;
      } finally {
        current.free();
      }
      this.#decided.add(window.winner);
      const ownCommitLost = window.ownWinner;
      window.winner = rank;
      window.ownWinner = false;
      const events: ForkEvent[] = [{ type: 'switched', epoch, winner: rank, ownCommitLost }];
      if (ownCommitLost) events.push({ type: 'lostRace', epoch });
      return events;
    }
    if (epoch !== this.group.epoch) return [{ type: 'dropped', reason: 'stale' }];
    await this.#closeOptimistic();
    const snapshot = this.group.retainState();
    let r: ProcessResult;
    try {
      r = await this.group.process(commit);
    } catch (err) {
      snapshot.free();
      throw err;
    }
    if (r.kind !== 'commit') {
      snapshot.free();
      return [{ type: 'processed', result: r }];
    }
    await r.staged.merge();
    this.#optimistic = { epoch, deadline: this.#options.now() + this.#options.windowMs, winner: rank, ownWinner: false, snapshot };
    return [{ type: 'processed', result: { ...r, kind: 'commit' } }];
  }

  async #closeOptimistic(): Promise<void> {
    if (!this.#optimistic) return;
    this.#optimistic.snapshot.free();
    this.#decided.add(this.#optimistic.winner);
    this.#optimistic = undefined;
  }

}
