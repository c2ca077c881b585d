import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Lab } from '../lab/lab.js';
import { run } from '../lab/process.js';

/** PIDs of live processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
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
  const left = processesMentioning(lab.dir).map((pid) => `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
  expect(left).toEqual([]);
  expect(existsSync(`/run/unionize-lab/${lab.names.lab}.json`)).toBe(false);
}
