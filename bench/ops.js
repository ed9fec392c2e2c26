// The operations every bench implementation provides, in report order,
// with what exactly is timed. bench/impl/*.js implement them; bench/run.js
// drives them with tinybench.
//
// Implementation interface (see bench/impl/paired-mls.js):
//
//   export const name = 'paired-mls';            // the "impl" column
//   export async function setup(n, { ops }) {    // build an n-member group
//     return {
//       tasks: { [op]: { run, beforeEach?, afterEach?, beforeAll?, afterAll? } },
//       dispose: async () => {},                  // free what setup made
//     };
//   }
//
// Only `run` is timed. The hooks run once per iteration (beforeEach,
// afterEach) or once per task and phase (beforeAll, afterAll: warmup, then
// the measured run), outside the timing; tinybench's time budget (--time)
// counts timed `run`s only. All of a task's functions are called as methods
// of its task object, so `this` carries state from a hook to `run`.

export const OPS = {
  self_update_commit: 'a member creates a full-path self-update commit; the pending commit is cleared after each iteration (not timed)',
  process_commit: "a member processes (validates and stages) another member's self-update commit, made before the iteration (not timed) as that member's first handshake message of the epoch; the staged commit is discarded (not timed)",
  add_member: 'a member commits an Add of a fresh KeyPackage (made before the iteration, not timed); the pending commit is cleared (not timed)',
  join_welcome: "a new client joins from a Welcome (ratchet tree in the Welcome); the Welcome and the joiner's KeyPackage are made before the iteration (not timed)",
  encrypt_100b: 'a member encrypts a 100-byte application message',
  decrypt_100b: "a member processes another member's 100-byte application message; messages are encrypted ahead in batches (not timed) and processed in order",
  key_package: 'a client creates one KeyPackage',
};

export const OP_NAMES = Object.keys(OPS);

/** Messages decrypt_100b pre-encrypts at a time (outside the timing). */
const DECRYPT_BATCH = 200;

/**
 * A `beforeEach` for decrypt_100b: hands out the next pre-encrypted
 * message in `this.message`, encrypting a fresh batch with `encryptOne`
 * whenever the previous one is used up, so messages arrive in order.
 */
export function preEncrypted(encryptOne) {
  let queue = [];
  let next = 0;
  return async function beforeEach() {
    if (next === queue.length) {
      queue = [];
      next = 0;
      for (let i = 0; i < DECRYPT_BATCH; i++) queue.push(await encryptOne());
    }
    this.message = queue[next++];
  };
}
