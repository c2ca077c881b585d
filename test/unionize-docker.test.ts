import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
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
    // Beside the main run's report: ./run-tests adds its counts (skips too) to the closing line.
    mkdirSync(join(repo, 'test-artifacts'), { recursive: true });
    const report = join(repo, 'test-artifacts', 'vitest-integration.json');
    const result = spawnSync(
      'ip',
      [
        'netns', 'exec', lab.names.dock, process.execPath, join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'integration',
        '--reporter=default', '--reporter=json', `--outputFile.json=${report}`,
      ],
      {
        cwd: repo,
        encoding: 'utf8',
        timeout: 180_000,
        env: {
          ...process.env,
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
    const results = (JSON.parse(readFileSync(report, 'utf8')) as VitestReport).testResults;
    const tests = results.flatMap((file) => file.assertionResults.map((t) => ({ file: file.name, name: t.fullName, status: t.status })));
    expect(tests.filter((t) => t.status === 'passed').length).toBeGreaterThan(0);
    // Everything here runs: the lab gives the suite all it needs (the real pipework script included).
    const skipped = tests.filter((t) => t.status !== 'passed' && t.status !== 'failed');
    expect(skipped.map((t) => t.name)).toEqual([]);
  });
});

/** The parts of vitest's JSON report read here. */
interface VitestReport {
  testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }>;
}
