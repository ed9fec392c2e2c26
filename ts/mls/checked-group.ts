/**
 * The group and staged commit a process check receives, so that checks.ts
 * does not import group.ts (group.ts runs the checks; a check names its
 * group). group.ts merges `Group` and `StagedCommit` into these interfaces
 * through declaration merging, so checks see their full types.
 */

/** The group a checked message arrived in: a `Group`. */
export interface CheckedGroup {}

/** The staged commit a commit check inspects: a `StagedCommit`. */
export interface CheckedStagedCommit {}
