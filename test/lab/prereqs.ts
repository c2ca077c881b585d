import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { LAB_PATH } from './process.js';
import { repoRoot } from './repo.js';

/** What a command is called and which Debian package brings it. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['ip', 'iproute2'],
  ['dnsmasq', 'dnsmasq-base'],
  ['dhclient', 'isc-dhcp-client'],
  ['openssl', 'openssl'],
  ['curl', 'curl'],
  ['ping', 'iputils-ping'],
  ['sysctl', 'procps'],
];

export function findTool(name: string): string | undefined {
  for (const dir of LAB_PATH.split(':')) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface PrerequisiteOptions {
  /** Also need the built orchestrator and unionize (their bundles, packages/*\/dist/bundle/). */
  daemons?: boolean;
  /** Also need the built hook. */
  hook?: boolean;
}

/**
 * null when the end-to-end lab can run here, else one line saying why not,
 * for `describe.skipIf(reason)`.
 */
export function labPrerequisites(options: PrerequisiteOptions = {}): string | null {
  const fix = 'run scripts/install-deps.sh as root';
  if (process.platform !== 'linux') return `e2e lab needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'e2e lab needs root (network namespaces, dnsmasq, dockerd)';
  for (const [tool, pkg] of TOOLS) {
    if (!findTool(tool)) return `e2e lab needs ${tool} (Debian package ${pkg}; ${fix})`;
  }
  const dockerHost = process.env.DOCKER_HOST;
  const externalDocker = dockerHost?.startsWith('unix://') && existsSync(dockerHost.slice(7));
  if (!externalDocker && !findTool('dockerd')) return `e2e lab needs dockerd (Debian package docker.io; ${fix})`;
  if (!existsSync('/bin/busybox')) return `e2e lab needs a static /bin/busybox (Debian package busybox-static; ${fix})`;
  const netns = spawnSync('ip', ['netns', 'list'], { env: { ...process.env, PATH: LAB_PATH }, encoding: 'utf8' });
  if (netns.status !== 0) return `e2e lab needs network namespaces: ip netns list failed: ${(netns.stderr ?? '').trim()}`;
  const repo = repoRoot();
  const needed = [
    ...(options.daemons ? ['orchestrator/dist/bundle/orchestrator.mjs', 'unionize/dist/bundle/unionize.mjs'] : []),
    // The hook runs as one bundled file (start-up time: dnsmasq starts it for every lease change).
    ...(options.hook ? ['hook/dist/orchestrator-hook.mjs'] : []),
  ];
  for (const file of needed) {
    if (!existsSync(join(repo, 'packages', file))) return `e2e lab needs packages/${file} built (npm run build)`;
  }
  return null;
}

/**
 * For `describe.skipIf(...)`: the reason to skip, or null. Under CI=true the
 * end-to-end tests must run, so a missing prerequisite throws instead.
 */
export function labSkipReason(options: PrerequisiteOptions = {}): string | null {
  const reason = labPrerequisites(options);
  if (reason && process.env.CI === 'true') throw new Error(`CI=true and the e2e lab cannot run: ${reason}`);
  return reason;
}
