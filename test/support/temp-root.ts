import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';


/**
 * vitest's global set-up: every test of the run, and every program a test
 * starts, gets its temporary files in one folder of its own (TMPDIR), and the
 * teardown fails the run when a test left anything there. It then removes the
 * folder, so a failed run leaves nothing behind either.
 */
export default function setup(): () => void {
  const root = mkdtempSync('/tmp/uz-tests-');
  // Like /tmp itself: the lab's unprivileged daemons reach their own folders in it.
  chmodSync(root, 0o1777);
  process.env.TMPDIR = root;
  return () => {
    const left = readdirSync(root);
    rmSync(root, { recursive: true, force: true });
    if (left.length > 0) {
      process.exitCode = 1;
      throw new Error(`tests left ${left.length} thing(s) in their temporary folder ${root} (now removed): ${left.sort().join(', ')}`);
    }
  };
}

