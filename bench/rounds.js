// Rounds: a step of the bench measured several times, the implementations
// taking turns (paired-mls, then openmls-native; in the next round
// openmls-native first, then paired-mls; …), each round with a fresh
// set-up on both sides (fresh groups: paired-mls stays in one warm process
// across rounds, native starts a new one each round). A round that fails
// on one side leaves that cell with fewer round means (`round_means`).
//
// Why: each cell of one round is a single window of --time ms at one
// moment. On a shared machine a burst of load from another process in
// that window inflates the cell of whichever side ran then, and nothing
// in a one-round run tells it from a real difference (bench/README.md,
// "Round 2e: full-shape cells": the full-shape n = 128 cells of the round
// 2d run read 1.5–1.6× slower than the blank ones for ops that do the same
// work, in 2 of 7 default runs). With rounds, both sides are measured in
// alternating windows, and a cell reports the median of its round means:
// one disturbed window on either side no longer decides the ratio. The
// same work is timed on both sides, and the median is taken the same way
// for both.

/** The key of one cell: implementation, shape, op and group size. */
const cellKey = (r) => `${r.impl}\u0000${r.shape}\u0000${r.op}\u0000${r.n}`;

/** The median of a non-empty list of numbers (the mean of the middle two for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Merge result rows ({ impl, op, n, shape, mean_ms, p50_ms, samples }) of
 * several rounds into one row per cell: mean_ms and p50_ms are the medians
 * of the rounds' values, samples their sum, and `round_means` the rounds'
 * means in the order measured. A cell measured once keeps its figures.
 */
export function mergeRounds(rows) {
  const cells = new Map();
  for (const row of rows) {
    const key = cellKey(row);
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(row);
  }
  return [...cells.values()].map((list) => {
    const { round: _round, ...first } = list[0];
    if (list.length === 1) return first;
    return {
      ...first,
      mean_ms: median(list.map((r) => r.mean_ms)),
      p50_ms: median(list.map((r) => r.p50_ms)),
      samples: list.reduce((sum, r) => sum + r.samples, 0),
      round_means: list.map((r) => r.mean_ms),
    };
  });
}

/** Lines showing each cell measured in more than one round: its round means, lowest to highest. */
export function formatRoundSpread(rows, fmt) {
  const spread = rows.filter((r) => r.round_means);
  if (!spread.length) return '';
  const out = ['round means (ms, in the order measured; a cell reports their median)'];
  for (const r of spread) out.push(`  ${r.shape} ${r.op} n=${r.n} ${r.impl}: ${r.round_means.map(fmt).join(', ')}`);
  return out.join('\n');
}
