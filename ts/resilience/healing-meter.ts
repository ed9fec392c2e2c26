/**
 * Healing-latency meter (MLS architecture §8.2.2; docs/PROTOCOL.md §7.3):
 * how long a compromised member's stolen state keeps reading a group,
 * given how often each member updates and which member is paired.
 *
 * It measures, it does not model: a real group is run in simulated time,
 * the compromised member's storage is copied at t = 0 (without its seed
 * vault), and after every step the copy — fed every message an attacker on
 * the network sees — tries to decrypt a probe message. The first step from
 * which it fails is the healing point (a copy that cannot follow one commit
 * can never follow again).
 */
import { MemoryStorageAdapter, type StorageAdapter } from '../mls/storage.js';
import { MlsClient, type Identity } from '../mls/client.js';
import type { Group } from '../mls/group.js';
import { PairedDevice } from '../paired/paired-device.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import { WebCryptoSeedVault, generateSeed } from '../paired/seed-vault.js';

/** When a member (or the active device of a paired member) commits a self-update. */
export type UpdatePolicy = { kind: 'never' } | { kind: 'everyMessages'; messages: number } | { kind: 'everySeconds'; seconds: number };

/** One scenario of the healing meter: group size, update policy, pairing. */
export interface HealingScenario {
  /** Label in reports. */
  name: string;
  /** Group size (2 to 256). Member 0 is the compromised one. */
  members: number;
  /** Update policy of the compromised member (its own updates). */
  compromisedPolicy: UpdatePolicy;
  /** Update policy of every other member. */
  othersPolicy: UpdatePolicy;
  /** The compromised member is a passive device paired with an active one updating on its behalf with this policy. */
  paired?: UpdatePolicy;
  /** Simulated seconds per step (finite, > 0) and steps to run (1 to 100000). */
  secondsPerStep: number;
  steps: number;
  /** Application messages sent per step (0 to 10000; round robin among the other members). */
  messagesPerStep: number;
}

/** How long a stolen copy kept reading in one scenario. */
export interface HealingReport {
  name: string;
  /** Epochs from the compromise until the copy stops reading, or 'never' within the horizon. */
  epochs: number | 'never';
  /** Simulated seconds until then, or 'never'. */
  seconds: number | 'never';
  /** Commits made by (or on behalf of) the compromised member until then. */
  ownUpdates: number;
  /** Per step: simulated time, epoch, whether the copy still read the probe. */
  timeline: { seconds: number; epoch: number; copyReads: boolean }[];
}

interface Sim {
  name: string;
  client: MlsClient;
  identity: Identity;
  group: Group;
  /** Application messages this member sent or received. */
  seen: number;
  seenAtLastUpdate: number;
  lastUpdate: number;
}

/** Whether `policy` asks for an update now; "every k messages" counts messages sent or received. */
function due(policy: UpdatePolicy, sim: Pick<Sim, 'seen' | 'seenAtLastUpdate' | 'lastUpdate'>, now: number): boolean {
  if (policy.kind === 'everyMessages') return sim.seen - sim.seenAtLastUpdate >= policy.messages;
  if (policy.kind === 'everySeconds') return now - sim.lastUpdate >= policy.seconds;
  return false;
}

function updated(sim: Sim, now: number): void {
  sim.lastUpdate = now;
  sim.seenAtLastUpdate = sim.seen;
}

/** The attacker's copy: follows whatever it can, as the compromised member would. */
class Copy {
  #alive = true;
  private constructor(
    readonly client: MlsClient,
    readonly groupId: Uint8Array,
    readonly device: PairedDevice | undefined,
  ) {}

  static async of(storage: StorageAdapter, groupId: Uint8Array, paired: boolean): Promise<Copy> {
    const client = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(storage) });
    // It has everything but the vault: give it one of its own.
    const device = paired ? PairedDevice.open(client, await WebCryptoSeedVault.import(generateSeed())) : undefined;
    return new Copy(client, groupId, device);
  }

  async commit(commit: Uint8Array, pairing?: Uint8Array[]): Promise<void> {
    if (!this.#alive) return;
    try {
      if (pairing && this.device) {
        await this.device.applyNotify({ pairing, commit });
        return;
      }
      const r = await this.client.group(this.groupId).process(commit);
      if (r.kind === 'commit') await r.staged.merge();
    } catch {
      this.#alive = false;
    }
  }

  async reads(message: Uint8Array): Promise<boolean> {
    if (!this.#alive) return false;
    const r = await this.client.group(this.groupId).process(message).catch(() => undefined);
    return r?.kind === 'application';
  }
}

const isInt = (n: unknown, min: number, max: number): boolean => Number.isInteger(n) && (n as number) >= min && (n as number) <= max;
const positive = (n: unknown): boolean => Number.isFinite(n) && (n as number) > 0;
const validPolicy = (p: UpdatePolicy | undefined): boolean =>
  p?.kind === 'never' || (p?.kind === 'everyMessages' && isInt(p.messages, 1, 1e6)) || (p?.kind === 'everySeconds' && positive(p.seconds));

/** Run one scenario; real groups, simulated time. A scenario out of range is refused (`INVALID_ARGUMENT`). */
export async function measureHealing(s: HealingScenario): Promise<HealingReport> {
  const valid =
    isInt(s?.members, 2, 256) &&
    isInt(s.steps, 1, 1e5) &&
    isInt(s.messagesPerStep, 0, 1e4) &&
    positive(s.secondsPerStep) &&
    validPolicy(s.compromisedPolicy) &&
    validPolicy(s.othersPolicy) &&
    (s.paired === undefined || validPolicy(s.paired));
  if (!valid) throw invalidArgument('scenario out of range (docs/PROTOCOL.md §7.3)');
  const sims: Sim[] = [];
  for (let i = 0; i < s.members; i++) {
    const client = await MlsClient.open();
    const identity = await client.createIdentity(`member-${i}`, 1);
    sims.push({ name: `member-${i}`, client, identity, group: undefined as unknown as Group, seen: 0, seenAtLastUpdate: 0, lastUpdate: 0 });
  }
  // The compromised member 0; with pairing, its active device creates the group as the anchor.
  const victim = sims[0]!;
  const others = sims.slice(1);
  let active: Sim | undefined;
  let activeDevice: PairedDevice | undefined;
  let passiveDevice: PairedDevice | undefined;
  const creator = s.paired ? await newSim('member-0-active') : victim;
  if (s.paired) active = creator;
  creator.group = await creator.client.createGroup(creator.identity);
  const { welcome } = await creator.group.commit({ add: await Promise.all(others.map((m) => m.client.createKeyPackage(m.identity))) });
  await creator.group.mergePendingCommit();
  for (const m of others) m.group = await m.client.joinFromWelcome(welcome!);
  if (s.paired && active) {
    activeDevice = await PairedDevice.initiate(active.client, active.identity);
    const invite = await activeDevice.invite(await PairedDevice.createKeyPackage(victim.client, victim.identity));
    passiveDevice = await PairedDevice.join(victim.client, invite.initPairing);
    const shared = await passiveDevice.receive(invite.shareRand);
    if (shared.type !== 'shareRandApplied') throw new MlsError('INTERNAL', 'pairing failed');
    await activeDevice.receive(shared.accept);
    const enrolled = await activeDevice.enroll(active.group);
    await deliver(enrolled.commit, others);
    await passiveDevice.applyNotify(enrolled);
    victim.group = victim.client.group(active.group.id);
  }
  const groupId = victim.group.id;
  const everyone = active ? [active, ...sims] : sims;

  // Compromise at t = 0.
  const copy = await Copy.of(victim.client.storage, groupId, Boolean(s.paired));
  const startEpoch = victim.group.epoch;
  const timeline: HealingReport['timeline'] = [];
  let healed: { epochs: number; seconds: number } | undefined;
  let ownUpdates = 0;
  let speaker = 0;

  for (let step = 1; step <= s.steps; step++) {
    const now = step * s.secondsPerStep;
    // Traffic among the other members; everyone (and the copy) processes it.
    for (let i = 0; i < s.messagesPerStep; i++) {
      const from = others[speaker++ % others.length]!;
      const msg = await from.group.encrypt(`t=${now} #${i}`);
      for (const m of everyone) {
        m.seen++;
        if (m !== from) await m.group.process(msg);
      }
      await copy.reads(msg);
    }
    // Updates by policy.
    for (const m of others) {
      if (!due(s.othersPolicy, m, now)) continue;
      const { commit } = await m.group.selfUpdate();
      await m.group.mergePendingCommit();
      updated(m, now);
      await deliver(commit, everyone.filter((x) => x !== m));
      await copy.commit(commit);
    }
    if (!s.paired && due(s.compromisedPolicy, victim, now)) {
      const { commit } = await victim.group.selfUpdate();
      await victim.group.mergePendingCommit();
      updated(victim, now);
      ownUpdates++;
      await deliver(commit, others);
      await copy.commit(commit);
    }
    if (s.paired && active && activeDevice && passiveDevice && due(s.paired, active, now)) {
      const u = await activeDevice.update(active.group);
      await active.group.mergePendingCommit();
      updated(active, now);
      ownUpdates++;
      await deliver(u.commit, others);
      await passiveDevice.applyNotify(u);
      await copy.commit(u.commit, u.pairing);
    }
    // Probe.
    const probe = await others[0]!.group.encrypt(`probe t=${now}`);
    for (const m of everyone) if (m !== others[0]) await m.group.process(probe);
    const copyReads = await copy.reads(probe);
    const epoch = victim.group.epoch;
    timeline.push({ seconds: now, epoch, copyReads });
    if (!copyReads && !healed) healed = { epochs: epoch - startEpoch, seconds: now };
    if (healed) break;
  }
  for (const m of everyone) m.client.free();
  copy.client.free();
  return {
    name: s.name,
    epochs: healed?.epochs ?? 'never',
    seconds: healed?.seconds ?? 'never',
    ownUpdates,
    timeline,
  };

  async function newSim(name: string): Promise<Sim> {
    const client = await MlsClient.open();
    // The anchor identity is the victim's user: same credential on both devices.
    const identity = await client.createIdentity('member-0', 1);
    return { name, client, identity, group: undefined as unknown as Group, seen: 0, seenAtLastUpdate: 0, lastUpdate: 0 };
  }
}

async function deliver(commit: Uint8Array, members: Sim[]): Promise<void> {
  for (const m of members) {
    const r = await m.group.process(commit);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/** Reports as an aligned text table. */
export function healingTable(reports: HealingReport[]): string {
  const rows = [['scenario', 'epochs to heal', 'seconds to heal', 'own/paired updates'], ...reports.map((r) => [r.name, String(r.epochs), String(r.seconds), String(r.ownUpdates)])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}

/** A horizontal bar chart (SVG) of seconds to heal; "never" runs to the horizon. */
export function healingChart(reports: HealingReport[], horizonSeconds: number): string {
  const width = 640;
  const left = 260;
  const barH = 22;
  const height = 40 + reports.length * (barH + 10);
  const scale = (width - left - 60) / horizonSeconds;
  const bars = reports
    .map((r, i) => {
      const y = 30 + i * (barH + 10);
      const never = r.seconds === 'never';
      const w = never ? horizonSeconds * scale : Math.max(2, (r.seconds as number) * scale);
      const label = never ? 'never (within horizon)' : `${r.seconds} s, ${r.epochs} epochs`;
      return [
        `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${escapeXml(r.name)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${never ? '#c0392b' : '#27ae60'}"/>`,
        `<text x="${left + w + 4}" y="${y + 15}" font-size="11">${label}</text>`,
      ].join('');
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<text x="10" y="18" font-size="13">Time until a stolen copy of the member's state stops reading the group</text>
${bars}
</svg>
`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
