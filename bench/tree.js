// Tree shapes (bench/README.md, "Tree shapes"): the full-shape build order
// shared by the implementations, and a census of a ratchet tree to verify
// the shape a setup produced.

export const SHAPES = ['blank', 'full'];

/**
 * The full shape's build plan for n leaves: leaf 0 is m0; the group grows
 * left to right, and after each pair of leaves is added, the pair's right
 * (odd) leaf joins and commits a self-update, writing every one of its
 * ancestors. The last leaf commits too when n is odd. Returns
 * [{ adds: [leaf indices added in one commit], committer }]; the last
 * committer is leaf n-1, the peer m1.
 */
export function fullShapePlan(n) {
  const steps = [];
  let next = 1;
  const committers = [];
  for (let c = 1; c < n; c += 2) committers.push(c);
  if (n % 2 === 1 && n > 1) committers.push(n - 1);
  for (const committer of committers) {
    const adds = [];
    while (next <= committer) adds.push(next++);
    steps.push({ adds, committer });
  }
  return steps;
}

/**
 * Census of a ratchet tree given as an array of nodes in the ts-mls form
 * (`undefined` for blank, `{ nodeType: 'leaf' | 'parent', parent: { unmergedLeaves } }`):
 * leaves, non-blank parents, parents that can hold a key (a leaf on both
 * sides: n-1 of them for n leaves) and the total of unmerged leaves.
 */
export function treeCensus(tree) {
  const occupied = (i) => tree[i] !== undefined && tree[i] !== null;
  let leaves = 0;
  let nonblankParents = 0;
  let fillable = 0;
  let unmerged = 0;
  const hasLeaf = (from, to) => {
    for (let i = from; i <= to && i < tree.length; i += 2) if (occupied(i)) return true;
    return false;
  };
  for (let i = 0; i < tree.length; i++) {
    if (i % 2 === 0) {
      if (occupied(i)) leaves++;
      continue;
    }
    let level = 0;
    while ((i >> level) & 1) level++;
    const half = 1 << (level - 1); // distance from x to the roots of its children
    if (hasLeaf(i - 2 * half + 1, i - 1) && hasLeaf(i + 1, i + 2 * half - 1)) fillable++;
    if (occupied(i)) {
      nonblankParents++;
      unmerged += tree[i].parent?.unmergedLeaves?.length ?? 0;
    }
  }
  return { leaves, nonblank_parents: nonblankParents, fillable_parents: fillable, unmerged_leaves: unmerged };
}
