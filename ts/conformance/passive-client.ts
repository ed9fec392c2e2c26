/**
 * Runner for the MLS working group's passive-client test vectors
 * (passive-client-welcome / -handling-commit / -random): join from a
 * Welcome with given key material, then process every epoch's proposals
 * and commit, comparing the epoch authenticator after each step.
 */
import { MlsClient } from '../mls/client.js';
import { MlsError } from '../mls/errors.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { coreInfo, init } from '../mls/init.js';

/** One case of the mlswg passive-client test vectors, as in their JSON files. */
export interface PassiveClientCase {
  cipher_suite: number;
  external_psks: { psk_id: string; psk: string }[];
  key_package: string;
  signature_priv: string;
  encryption_priv: string;
  init_priv: string;
  welcome: string;
  ratchet_tree: string | null;
  initial_epoch_authenticator: string;
  epochs: { proposals: string[]; commit: string; epoch_authenticator: string }[];
}

/** How a passive-client case ended. */
export type CaseOutcome = { status: 'passed' } | { status: 'skipped'; reason: string } | { status: 'failed'; reason: string };

/** Run one mlswg passive-client test vector case against the core. */
export async function runPassiveClientCase(testCase: PassiveClientCase): Promise<CaseOutcome> {
  await init();
  if (!coreInfo().ciphersuites.includes(testCase.cipher_suite)) {
    return { status: 'skipped', reason: `ciphersuite ${testCase.cipher_suite} not supported` };
  }
  const client = await MlsClient.open();
  try {
    await client.importKeyPackageForTesting({
      keyPackage: fromHex(testCase.key_package),
      initPriv: fromHex(testCase.init_priv),
      encryptionPriv: fromHex(testCase.encryption_priv),
      signaturePriv: fromHex(testCase.signature_priv),
    });
    for (const { psk_id, psk } of testCase.external_psks) await client.psks.store(fromHex(psk_id), fromHex(psk));
    // Vectors mix PublicMessage and PrivateMessage handshakes.
    const group = await client.joinFromWelcome(fromHex(testCase.welcome), {
      wireFormat: 'mixed-ciphertext',
      // The vectors' leaves carry lifetimes that ended long ago.
      skipLifetimeValidation: true,
      // Some commits inject resumption PSKs of earlier epochs.
      numberOfResumptionPsks: 64,
      ratchetTree: testCase.ratchet_tree ? fromHex(testCase.ratchet_tree) : undefined,
    });
    const expectAuthenticator = (expected: string, step: string): CaseOutcome | undefined => {
      const actual = group.epochAuthenticator();
      return bytesEqual(actual, fromHex(expected))
        ? undefined
        : { status: 'failed', reason: `${step}: epoch authenticator ${toHex(actual)} != ${expected}` };
    };
    const initial = expectAuthenticator(testCase.initial_epoch_authenticator, 'after join');
    if (initial) return initial;
    for (const [i, epoch] of testCase.epochs.entries()) {
      for (const proposal of epoch.proposals) {
        const r = await group.process(fromHex(proposal));
        if (r.kind !== 'proposal') return { status: 'failed', reason: `epoch ${i}: expected a proposal, got ${r.kind}` };
      }
      const r = await group.process(fromHex(epoch.commit));
      if (r.kind !== 'commit') return { status: 'failed', reason: `epoch ${i}: expected a commit, got ${r.kind}` };
      await r.staged.merge();
      const mismatch = expectAuthenticator(epoch.epoch_authenticator, `epoch ${i}`);
      if (mismatch) return mismatch;
    }
    return { status: 'passed' };
  } catch (err) {
    const e = err instanceof MlsError ? `${err.code}: ${err.message}` : String(err);
    return { status: 'failed', reason: e };
  } finally {
    client.free();
  }
}
