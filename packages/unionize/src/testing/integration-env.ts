import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * What the `*.integration.test.ts` files run against: a real dockerd and a
 * bridge in a test network namespace, named by the environment that
 * test/unionize-docker.test.ts sets (or an operator running them by hand; see
 * docker/docker-client.integration.test.ts).
 */
export const integrationEnv = {
  socket: process.env.UNIONIZE_TEST_DOCKER_SOCKET,
  /** Any image whose command keeps running. */
  image: process.env.UNIONIZE_TEST_IMAGE ?? 'ua-test:latest',
  bridge: process.env.UNIONIZE_TEST_BRIDGE ?? 'br-ctr',
  gateway: process.env.UNIONIZE_TEST_GATEWAY ?? 'fd00:3::1',
  address: process.env.UNIONIZE_TEST_ADDRESS ?? 'fd00:3::ab/64',
  /** The real pipework script: the repository's unchanged upstream copy (third_party/pipework). */
  pipework: process.env.UNIONIZE_TEST_PIPEWORK ?? fileURLToPath(new URL('../../../../third_party/pipework/pipework', import.meta.url)),
};

function inNamedNetns(): boolean {
  try {
    return execFileSync('ip', ['netns', 'identify'], { encoding: 'utf8', stdio: 'pipe' }).trim() !== '';
  } catch {
    return false;
  }
}

function prerequisiteMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!integrationEnv.socket) return 'set UNIONIZE_TEST_DOCKER_SOCKET';
  // Veths go into our own namespace: run only inside a named (test) one, never the host's.
  if (!inNamedNetns()) return 'run it under ip netns exec, not in the root namespace';
  return null;
}

/**
 * Why the integration tests cannot run here, or null. Under CI=true they must
 * run: a missing prerequisite throws, and the test file fails.
 */
export function integrationSkipReason(): string | null {
  const reason = prerequisiteMissing();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true and the integration tests cannot run: ${reason}`);
  return reason;
}
