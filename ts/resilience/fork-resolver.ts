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
 *   is wiped when the window closes (forward secrecy). A commit applied on
 *   top opens a window of its own and leaves the earlier one open: a
 *   switch there drops what was applied on top, and keeps that branch in
 *   case a copy of its commit in other bytes brings it back.
 *
 * A received commit becomes a candidate only once it processed (the
 * group's checks included): junk with a commit's clear header opens no
 * window, closes none and is not kept.
 */
import type { CommitResult, CommitOptions } from '../mls/types.js';
import type { Group, ProcessResult, RetainedState, StagedCommit } from '../mls/group.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import { bytesEqual, sha256, toHex, type BytesLike } from '../mls/bytes.js';
import { readMlsHeader } from '../codec/mls-header.js';
import type { ForkFollower } from './fork-follower.js';
import { recoveryRecords } from './state-loss-recovery.js';

/** Wait for the winning commit (hold) or apply the first and switch if another wins (optimistic). */
export type ForkStrategy = 'hold' | 'optimistic';

/** Options of a ForkResolver. */
export interface ForkOptions {
  strategy: ForkStrategy;
  /** How long competitors are awaited (hold) or the old state is kept (optimistic). */
  windowMs: number;
  /** Clock (tests pass a simulated one; then call `tick()`: only the default clock closes an optimistic window by a timer). */
  now?: () => number;
}

/** What a ForkResolver did with a message. */
export type ForkEvent =
  | { type: 'processed'; result: ProcessResult }
  | { type: 'candidate'; epoch: number }
  | { type: 'settled'; epoch: number; winner: string; ownCommitWon: boolean }
  /** `unread`: how many of this member's last messages through `encrypt` were sent on the branch it left; the winner's members cannot read them (docs/PROTOCOL.md §7.1). */
  | { type: 'switched'; epoch: number; winner: string; ownCommitLost: boolean; unread: number }
  | { type: 'lostRace'; epoch: number }
  /** A commit of this member's that a `lostRace` reported is in again: a switch went back to its branch (its commit before, in other bytes). */
  | { type: 'regained'; epoch: number }
  /** Reasons: docs/PROTOCOL.md §7.1 (`future`: hand it in again later). */
  | { type: 'dropped'; reason: 'losing-commit' | 'duplicate' | 'late' | 'future' };

/** The layers whose records follow a switch: the recovery registry (a layer of its own would be added here). */
const followers: ForkFollower[] = [recoveryRecords];

/** Foreign candidates a hold window keeps at most: the lowest-ranked ones. */
const MAX_CANDIDATES = 8;
/** Optimistic windows open at once at most (one per epoch applied within `windowMs`): a further one closes the oldest early. */
const MAX_WINDOWS = 8;

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
  /** This member's own pending commit, if it committed. */
  own: { rank: string } | undefined;
  /** Foreign commits as they processed on receipt (the decision is taken then), lowest rank first, at most MAX_CANDIDATES. */
  candidates: { rank: string; commit: Uint8Array; staged: StagedCommit }[];
}

interface OptimisticWindow {
  /** Epoch the competing commits start from. */
  epoch: number;
  deadline: number;
  winner: string;
  ownWinner: boolean;
  /** The state before the winner, kept inside the core; `free()` wipes it. */
  snapshot: RetainedState;
  /** Epoch authenticator once the winner is applied: a competitor leading there is the winner in other bytes. */
  applied: Uint8Array;
  /** What each `ForkFollower` kept as the window opened: a switch here puts it back. */
  records: unknown[];
  /** Messages sent through `encrypt` while this was the newest window (since it opened or its last switch): unreadable if the member switches here or below. */
  sent: number;
  /** Branches a switch here left, newest last: a competitor leading to one's epoch (its commit in other bytes) brings it back. */
  left: LeftBranch[];
}

/** A branch a switch left: its commit at the window's level, the member's state where it left it, and the windows that were on top (with the branches they had left). */
interface LeftBranch {
  applied: Uint8Array;
  ownWinner: boolean;
  sent: number;
  tip: RetainedState;
  records: unknown[];
  above: OptimisticWindow[];
}

/** Group states the branches left keep at most, over all windows (the oldest go first): each is a state of a branch a re-encoded commit can bring back. */
const MAX_LEFT_STATES = 8;
/**
 * States a branch left holds: its tip, the kept state of each window on
 * top, and the branches those windows had left (kept with them: a switch
 * in a lower window used to wipe them, and a lower copy of such a branch's
 * commit was then applied afresh, the member's commits there lost).
 */
function leftStates(b: LeftBranch): number {
  return 1 + b.above.reduce((n, w) => n + 1 + leftStatesOf(w), 0);
}
/** States the branches a switch in `w` left hold. */
function leftStatesOf(w: OptimisticWindow): number {
  return w.left.reduce((n, b) => n + leftStates(b), 0);
}
function freeBranch(b: LeftBranch): void {
  b.tip.free();
  for (const w of b.above) {
    w.snapshot.free();
    for (const l of w.left) freeBranch(l);
  }
}

/** Processes a group's messages under eventually consistent delivery, resolving competing commits for one epoch; calls run one at a time, in order (docs/PROTOCOL.md §7.1). */
export class ForkResolver {
  readonly group: Group;
  readonly #strategy: ForkStrategy;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #timed: boolean;
  #hold: HoldWindow | undefined;
  /** Open optimistic windows, oldest (lowest epoch) first; each epoch applied on top of the previous one. */
  #optimistic: OptimisticWindow[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(group: Group, options: ForkOptions) {
    // A window of NaN or Infinity would never close (kept epoch secrets for ever).
    if (!['hold', 'optimistic'].includes(options?.strategy) || !(options.windowMs >= 0 && options.windowMs < Infinity)) throw invalidArgument('strategy or windowMs');
    this.group = group;
    this.#strategy = options.strategy;
    this.#windowMs = options.windowMs;
    this.#now = options.now ?? (() => Date.now());
    this.#timed = options.now === undefined;
  }

  /** Hold strategy: no commit while competitors are awaited (`encrypt` still sends, docs/PROTOCOL.md §7.1). */
  canSend(): boolean {
    return this.#hold === undefined;
  }

  /** Group states kept for a possible switch (optimistic): one per open window (at most 8), and those of branches a switch left (at most 8 more). */
  retainedStates(): number {
    return this.#optimistic.reduce((n, w) => n + 1 + leftStatesOf(w), 0);
  }

  /**
   * The last epoch no switch can take back (optimistic: the oldest open
   * window's, else the current one): what a member did in a later epoch
   * is void if a `switched` for an earlier epoch follows (docs/PROTOCOL.md §7.2).
   */
  settledEpoch(): number {
    return this.#optimistic[0]?.epoch ?? this.group.epoch;
  }

  /** Other members' commits held in an open hold window (at most 8). */
  heldCandidates(): number {
    return this.#hold?.candidates.length ?? 0;
  }

  /** Commit as a candidate for the current epoch (hold: pending until settled, no `send`; optimistic: merged at once). */
  commit(options: CommitOptions = {}): Promise<CommitResult> {
    return this.#exclusive(() => this.#commit(options));
  }

  /**
   * Encrypt an application message in turn with the other calls: a
   * `group.encrypt` made while a `receive` tries a competitor (optimistic)
   * would be sent in the kept epoch, readable by a member the applied
   * commit removed (docs/PROTOCOL.md §7.1).
   */
  encrypt(plaintext: BytesLike, options?: { aad?: Uint8Array }): Promise<Uint8Array> {
    return this.#exclusive(async () => {
      const message = await this.group.encrypt(plaintext, options);
      // Sent on a branch a switch may leave (`switched.unread`).
      const newest = this.#optimistic.at(-1);
      if (newest) newest.sent++;
      return message;
    });
  }

  /** Process any message of the group (a window that closed first reports first); one that does not process throws, nothing kept. */
  receive(message: Uint8Array): Promise<ForkEvent[]> {
    if (!(message instanceof Uint8Array)) return Promise.reject(invalidArgument('message'));
    return this.#exclusive(async () => {
      const events = await this.#tick();
      return [...events, ...(await this.#receive(message))];
    });
  }

  /** Close windows whose time is up: settle (hold) or wipe the kept state (optimistic). */
  tick(): Promise<ForkEvent[]> {
    return this.#exclusive(() => this.#tick());
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #commit(options: CommitOptions): Promise<CommitResult> {
    if (!this.canSend()) throw new MlsError('INVALID_STATE', 'sending is held until the fork window closes');
    const epoch = this.group.epoch;
    if (this.#strategy === 'hold') {
      if (options.send !== undefined) throw invalidArgument('send: the hold strategy merges when the window closes');
      const out = await this.group.commit(options);
      const rank = await commitRank(out.commit);
      this.#openHold(epoch).own = { rank };
      return out;
    }
    // A window opens only once the commit is merged.
    const records = followers.map((f) => f.keep(this.group));
    const snapshot = this.group.retainState();
    let out: CommitResult;
    try {
      out = await this.group.commit(options);
      if (this.group.state().pendingCommit) await this.group.mergePendingCommit();
    } catch (err) {
      snapshot.free();
      throw err;
    }
    this.#openOptimistic({ epoch, deadline: this.#now() + this.#windowMs, winner: await commitRank(out.commit), ownWinner: true, snapshot, applied: this.group.epochAuthenticator(), records, sent: 0, left: [] });
    return out;
  }

  async #receive(message: Uint8Array): Promise<ForkEvent[]> {
    const header = readMlsHeader(message);
    // Commits are recognised by the clear header (content_type, RFC 9420 §6).
    const isCommit = header?.contentType === 3;
    if (!isCommit) return [{ type: 'processed', result: await this.group.process(message) }];
    const rank = await commitRank(message);
    const epoch = Number(header!.epoch);
    return this.#strategy === 'hold' ? this.#receiveHold(message, rank, epoch) : this.#receiveOptimistic(message, rank, epoch);
  }

  async #tick(): Promise<ForkEvent[]> {
    const now = this.#now();
    if (this.#hold && now >= this.#hold.deadline) return this.#settle();
    while (this.#optimistic[0] && now >= this.#optimistic[0].deadline) this.#closeOldest();
    return [];
  }

  // --- hold -----------------------------------------------------------------

  #openHold(epoch: number): HoldWindow {
    this.#hold ??= { epoch, deadline: this.#now() + this.#windowMs, own: undefined, candidates: [] };
    return this.#hold;
  }

  async #receiveHold(commit: Uint8Array, rank: string, epoch: number): Promise<ForkEvent[]> {
    const current = this.group.epoch;
    if (epoch !== current) return [{ type: 'dropped', reason: epoch < current ? 'late' : 'future' }];
    const window = this.#hold;
    if (window && (window.own?.rank === rank || window.candidates.some((c) => c.rank === rank))) return [{ type: 'dropped', reason: 'duplicate' }];
    // Only a commit that processes (the group's checks included) is a
    // candidate, and it is kept as it processed: processing it again at the
    // settle could decide otherwise (a KeyPackage whose lifetime ended
    // meanwhile), at the other members only, not at the committer.
    const r = await this.group.process(commit);
    if (r.kind !== 'commit') return [{ type: 'processed', result: r }];
    const held = this.#openHold(epoch);
    held.candidates.push({ rank, commit, staged: r.staged });
    held.candidates.sort((a, b) => (a.rank < b.rank ? -1 : 1));
    const dropped = held.candidates.length > MAX_CANDIDATES ? held.candidates.pop() : undefined;
    dropped?.staged.discard();
    if (dropped?.rank === rank) return [{ type: 'dropped', reason: 'losing-commit' }];
    return [{ type: 'candidate', epoch }];
  }

  async #settle(): Promise<ForkEvent[]> {
    const window = this.#hold!;
    this.#hold = undefined;
    const ranked: { rank: string; commit?: Uint8Array; staged?: StagedCommit }[] = [...window.candidates];
    if (window.own) ranked.push({ rank: window.own.rank });
    ranked.sort((a, b) => (a.rank < b.rank ? -1 : 1));
    const lost: ForkEvent[] = [];
    try {
      // The lowest-ranked candidate wins, applied as it processed on
      // receipt; only if that merge is refused is it processed again (one
      // that then fails is passed over).
      for (const { rank: winner, commit, staged } of ranked) {
        if (!commit || !staged) {
          if (lost.length > 0) continue; // cleared for a candidate whose merge then failed
          await this.group.mergePendingCommit();
          return [{ type: 'settled', epoch: window.epoch, winner, ownCommitWon: true }];
        }
        if (window.own && lost.length === 0) {
          await this.group.clearPendingCommit();
          lost.push({ type: 'lostRace', epoch: window.epoch });
        }
        if (await this.#apply(staged, commit)) return [...lost, { type: 'settled', epoch: window.epoch, winner, ownCommitWon: false }];
      }
      return lost;
    } finally {
      for (const c of window.candidates) c.staged.discard();
    }
  }

  async #apply(staged: StagedCommit, commit: Uint8Array): Promise<boolean> {
    try {
      await staged.merge();
      return true;
    } catch {
      try {
        const r = await this.group.process(commit);
        if (r.kind === 'commit') await r.staged.merge();
        return r.kind === 'commit';
      } catch {
        return false;
      }
    }
  }

  // --- optimistic -----------------------------------------------------------

  async #receiveOptimistic(commit: Uint8Array, rank: string, epoch: number): Promise<ForkEvent[]> {
    // A competitor for an epoch we already moved on from (within its
    // window, also with commits applied on top since). Only a strictly
    // lower rank switches: a copy of the winner (a DS duplicate, this
    // member's own commit echoed) would otherwise be applied again, the
    // epoch's ratchets started afresh: own generations used twice, and
    // messages already read readable again.
    const level = this.#optimistic.findIndex((w) => w.epoch === epoch);
    const window = this.#optimistic[level];
    if (window) {
      if (rank === window.winner) return [{ type: 'dropped', reason: 'duplicate' }];
      if (rank > window.winner) return [{ type: 'dropped', reason: 'losing-commit' }];
      return this.#switch(level, commit, rank, epoch);
    }
    const current = this.group.epoch;
    if (epoch !== current) return [{ type: 'dropped', reason: epoch < current ? 'late' : 'future' }];
    // A commit for the epoch this member is in: a window opens only once
    // it is merged, so a message that does not process opens none.
    const records = followers.map((f) => f.keep(this.group));
    const snapshot = this.group.retainState();
    let r: ProcessResult;
    try {
      r = await this.group.process(commit);
      if (r.kind === 'commit') await r.staged.merge();
    } catch (err) {
      snapshot.free();
      throw err;
    }
    if (r.kind !== 'commit') {
      snapshot.free();
      return [{ type: 'processed', result: r }];
    }
    this.#openOptimistic({ epoch, deadline: this.#now() + this.#windowMs, winner: rank, ownWinner: false, snapshot, applied: this.group.epochAuthenticator(), records, sent: 0, left: [] });
    return [{ type: 'processed', result: r }];
  }

  async #switch(level: number, commit: Uint8Array, rank: string, epoch: number): Promise<ForkEvent[]> {
    const window = this.#optimistic[level]!;
    // The branch this member is on: kept, as a re-encoded copy of its
    // commit may bring it back (where the others kept what is on top).
    const current = this.group.retainState();
    const records = followers.map((f) => f.keep(this.group));
    const putBack = async (kept: unknown[], leaving?: unknown[]) => {
      for (const [i, f] of followers.entries()) await f.restore(this.group, kept[i], leaving && { kept: leaving[i], base: window.records[i], shared: window.epoch });
    };
    let back: LeftBranch | undefined;
    let reached!: Uint8Array;
    // One write for the whole switch: written step by step, a crash after
    // the kept epoch was put back left the member there on reopening (the
    // DS's replay of the commit it had applied then gave it that epoch
    // afresh, its generations there used again). Nothing may throw out of
    // the transaction: a rollback reloads the core, the kept states gone.
    let entered = false;
    const failed = await this.group.client
      .atomically(async (): Promise<{ err: unknown } | 'duplicate' | undefined> => {
        entered = true;
        try {
          // The competitor is checked as in the kept epoch, the layers' records
          // included: a recovery competing there needs the registry the branch
          // left may have pruned (before, PSK_NOT_FOUND: the member stayed).
          await this.group.restoreState(window.snapshot);
          await putBack(window.records, records);
          const r = await this.group.process(commit);
          if (r.kind !== 'commit') throw new MlsError('INVALID_MESSAGE', `the competing message is not a commit of another member (${r.kind})`);
          await r.staged.merge();
          reached = this.group.epochAuthenticator();
          // The same epoch again (the winner's content in other bytes): back to
          // the state that already sent and read in it. Its rank is now the one
          // to beat: a member that saw the copies in the other order has it.
          if (bytesEqual(reached, window.applied)) {
            await this.group.restoreState(current);
            await putBack(records);
            current.free();
            window.winner = rank;
            return 'duplicate';
          }
          // A branch left earlier, in other bytes: back to the member's own
          // state there, with what was applied on top (before, it applied the
          // commit afresh: its commits on top were lost while the members that
          // never left kept them, and it sent again under generations it had used).
          back = window.left.find((b) => bytesEqual(b.applied, reached));
          if (back) {
            await this.group.restoreState(back.tip);
            await putBack(back.records, records);
          }
        } catch (err) {
          // A competitor that fails once the kept epoch is back (a forged copy
          // of a commit ranks lower after a few tries) puts the group back where
          // it was, not in the epoch everyone else left.
          await this.group.restoreState(current);
          await putBack(records);
          current.free();
          return { err };
        }
        return undefined;
      })
      .catch((err: unknown) => {
        // Refused before it began (a `commit({ send })` of this client waits on its send): nothing changed, hand the commit in again.
        if (!entered) current.free();
        throw err;
      });
    if (failed === 'duplicate') return [{ type: 'dropped', reason: 'duplicate' }];
    if (failed) throw failed.err;
    // The branch left: this window's winner and every commit applied on top
    // of it (their windows with the branches they left); what the layers
    // stored since the window opened is undone above.
    const above = this.#optimistic.splice(level + 1);
    const leaving = [window, ...above];
    const unread = leaving.reduce((n, w) => n + w.sent, 0);
    const lost: ForkEvent[] = leaving.filter((w) => w.ownWinner).map((w) => ({ type: 'lostRace', epoch: w.epoch }));
    const ownCommitLost = window.ownWinner;
    if (back) window.left.splice(window.left.indexOf(back), 1);
    window.left.push({ applied: window.applied, ownWinner: window.ownWinner, sent: window.sent, tip: current, records, above });
    Object.assign(window, { winner: rank, ownWinner: back?.ownWinner ?? false, applied: reached, sent: back?.sent ?? 0 });
    const regained: ForkEvent[] = [];
    if (back) {
      this.#optimistic.push(...back.above);
      back.tip.free();
      for (const w of [window, ...back.above]) if (w.ownWinner) regained.push({ type: 'regained', epoch: w.epoch });
    }
    this.#boundLeft();
    this.#schedule();
    return [{ type: 'switched', epoch, winner: rank, ownCommitLost, unread }, ...lost, ...regained];
  }

  /**
   * At most MAX_LEFT_STATES states in the branches left: first the branches
   * kept inside branches left (those a switch used to wipe), then whole
   * branches; the oldest windows' oldest first.
   */
  #boundLeft(): void {
    let total = this.#optimistic.reduce((n, w) => n + leftStatesOf(w), 0);
    const trim = (left: LeftBranch[]) => {
      while (total > MAX_LEFT_STATES && left.length > 0) {
        const b = left.shift()!;
        total -= leftStates(b);
        freeBranch(b);
      }
    };
    for (const w of this.#optimistic) for (const b of w.left) for (const above of b.above) trim(above.left);
    for (const w of this.#optimistic) trim(w.left);
  }

  #openOptimistic(window: OptimisticWindow): void {
    if (this.#optimistic.length >= MAX_WINDOWS) this.#closeOldest();
    this.#optimistic.push(window);
    this.#schedule();
  }

  /**
   * With the default clock, the oldest window is closed by a timer when its
   * time is up, whether or not anything arrives (a silent DS must not keep
   * old epoch secrets alive), then the next one's.
   */
  #schedule(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const oldest = this.#optimistic[0];
    if (!this.#timed || !oldest) return;
    const close = () =>
      this.#exclusive(async () => {
        if (this.#optimistic[0] === oldest) this.#closeOldest();
      });
    this.#timer = setTimeout(() => void close(), Math.max(0, oldest.deadline - this.#now()));
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #closeOldest(): void {
    const oldest = this.#optimistic.shift();
    oldest?.snapshot.free();
    for (const b of oldest?.left ?? []) freeBranch(b);
    this.#schedule();
  }
}
