// paired-mls as a bench implementation. Each implementation exports
// `name` and `setup(n)`, which builds an n-member group (add-only, so parent
// nodes are blank) and returns one async function per operation. A later
// issue adds ts-mls beside it with the same shape.
import { MlsClient } from 'paired-mls';

export const name = 'paired-mls';

async function member(name) {
  const client = await MlsClient.open();
  const identity = await client.createIdentity(name, 1);
  return { client, identity };
}

/** Build the group: the creator adds n-1 members in one commit; one of them joins. */
async function buildGroup(n) {
  const creator = await member('m0');
  const group = await creator.client.createGroup(creator.identity);
  if (n === 1) return { creator, group, receiver: undefined, welcome: undefined };
  const receiver = await member('m1');
  const others = [await receiver.client.createKeyPackage(receiver.identity)];
  // The other members only need KeyPackages (each with its own signature
  // key); one client makes them all.
  const filler = await member('filler');
  for (let i = 2; i < n; i++) {
    const identity = await filler.client.createIdentity(`m${i}`, 1);
    others.push(await filler.client.createKeyPackage(identity));
  }
  const add = await group.commit({ add: others });
  await group.mergePendingCommit();
  receiver.group = await receiver.client.joinFromWelcome(add.welcome);
  filler.client.free();
  return { creator, group, receiver };
}

export async function setup(n) {
  const { creator, group, receiver } = await buildGroup(n);
  const payload = new Uint8Array(100).fill(7);

  return {
    async self_update_commit() {
      await group.selfUpdate();
      await group.clearPendingCommit();
    },
    process_commit: {
      // The committer's commit is made outside the timed part.
      async before() {
        this.commit = (await receiver.group.selfUpdate()).commit;
        await receiver.group.clearPendingCommit();
      },
      async run() {
        const r = await group.process(this.commit);
        r.staged.discard();
      },
    },
    add_member: {
      async before() {
        const j = await member('joiner');
        this.kp = await j.client.createKeyPackage(j.identity);
        j.client.free();
      },
      async run() {
        await group.commit({ add: [this.kp] });
        await group.clearPendingCommit();
      },
    },
    join_welcome: {
      async before() {
        const j = await member('joiner');
        const kp = await j.client.createKeyPackage(j.identity);
        const add = await group.commit({ add: [kp] });
        await group.clearPendingCommit();
        this.joiner = j;
        this.welcome = add.welcome;
      },
      async run() {
        await this.joiner.client.joinFromWelcome(this.welcome);
      },
      async after() {
        this.joiner.client.free();
      },
    },
    async encrypt_100b() {
      await group.encrypt(payload);
    },
    decrypt_100b: {
      async before() {
        this.message = await receiver.group.encrypt(payload);
      },
      async run() {
        await group.process(this.message);
      },
    },
    async key_package() {
      await creator.client.createKeyPackage(creator.identity);
    },
    dispose() {
      creator.client.free();
      receiver?.client.free();
    },
  };
}
