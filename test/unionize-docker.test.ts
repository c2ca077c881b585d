import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labSkipReason, startLab, type Lab } from './lab/lab.js';
import { repoRoot } from './lab/repo.js';

/**
 * unionize's Docker client and native attach against a real dockerd, ip and
 * nsenter: runs the `integration` vitest project inside the lab's docker-host
 * namespace (its veths must never be made in the machine's own namespace).
 */
const skipReason = labSkipReason();
if (skipReason) console.warn(`e2e skipped: ${skipReason}`);

describe.skipIf(skipReason)('unionize docker client + native attach, for real', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab({ devices: 0, daemons: false, docker: true });
  });

  afterAll(async () => {
    await lab?.stop();
  });

  it('passes the integration suite inside the docker-host namespace', () => {
    const repo = repoRoot();
    const result = spawnSync(
      'ip',
      ['netns', 'exec', lab.names.dock, process.execPath, join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'integration'],
      {
        cwd: repo,
        encoding: 'utf8',
        timeout: 180_000,
        env: {
          ...process.env,
          CI: '',
          NO_COLOR: '1',
          FORCE_COLOR: '0',
          UNIONIZE_TEST_DOCKER_SOCKET: lab.dockerSocket,
          UNIONIZE_TEST_IMAGE: 'unionize-client:latest',
          UNIONIZE_TEST_BRIDGE: lab.names.containerBridge,
          UNIONIZE_TEST_GATEWAY: lab.addresses.dockBridge,
          UNIONIZE_TEST_ADDRESS: `${lab.prefix}:3::ab/64`,
        },
      },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/Tests\s+\S*\s*\d+ passed/);
    expect(output, 'the integration suite must run, not skip').not.toMatch(/skipped/);
  });
});
