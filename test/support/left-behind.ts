import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Lab } from '../lab/lab.js';
import { run } from '../lab/process.js';

/** Live processes whose command line mentions `text`, each as "PID: command line". */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(text)) found.push(`${entry}: ${cmdline.replace(/\0/g, ' ')}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

/**
 * Stop the lab and check it left nothing: no namespace of its, no process
 * started with a path in its directory (daemons, both dockerds, the DHCP
 * clients unionize ran in containers' namespaces), no registry entry.
 */
export async function stopAndExpectNothingLeft(lab: Lab): Promise<void> {
  expect(processesMentioning(lab.dir).length).toBeGreaterThan(0);
  await lab.stop();
  const netns = (await run(['ip', 'netns', 'list'])).stdout;
  expect(netns.split('\n').filter((line) => line.startsWith(`${lab.names.lab}-`))).toEqual([]);
  expect(processesMentioning(lab.dir)).toEqual([]);
  expect(existsSync(`/run/unionize-lab/${lab.names.lab}.json`)).toBe(false);
}
