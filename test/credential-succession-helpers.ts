/**
 * What the credential-succession tests share (docs/PROTOCOL.md §8.4 "Credential succession"): the rule's texts, a
 * client's storage as comparable strings, and the three-member group they attack.
 */
import { toHex, type MlsClient } from 'paired-mls';
import { PairedActor, commitAll, type Actor } from './interop-actors.js';

/** The rule, as every refusal of a renamed leaf ends. */
export const RULE = "a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)";
/** How the own `joinExternal`'s refusal of a renaming resync ends. */
export const RESYNC = `a resync's leaf takes the place of the leaf it removes, and ${RULE}; nothing was built`;

/** Every storage entry of `client`, as sorted hex: equal before and after a refusal when nothing was stored. */
export async function stored(client: MlsClient): Promise<string[]> {
  return (await client.storage.entries()).map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort();
}

/** alice's group with bob (leaf 1, `makeBob`'s: a paired-mls or a ts-mls member) and carol (leaf 2), all agreeing. */
export async function aliceBobCarol<B extends Actor>(suffix: string, makeBob: (name: string) => Promise<B>): Promise<{ alice: PairedActor; bob: B; carol: PairedActor }> {
  const alice = await PairedActor.create(`alice-${suffix}`);
  const bob = await makeBob(`bob-${suffix}`);
  const carol = await PairedActor.create(`carol-${suffix}`);
  await alice.createGroup();
  await bob.join((await commitAll(alice, { add: [await bob.keyPackage()] }, [alice]))!);
  await carol.join((await commitAll(alice, { add: [await carol.keyPackage()] }, [alice, bob]))!);
  return { alice, bob, carol };
}
