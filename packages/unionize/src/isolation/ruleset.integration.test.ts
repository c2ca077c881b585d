import { describe, expect, it } from 'vitest';
import { runCommand } from '../attach/run-command.js';
import { integrationSkipReason } from '../testing/integration-env.js';
import { buildRuleset, openRuleset, type IsolationRules } from './ruleset.js';

/**
 * The ruleset as the kernel takes it: each kind is written with the real nft,
 * twice (the second replaces the first), in a network namespace of its own
 * (`unshare --net`: never the one this runs in, where the lab's unionize
 * keeps its own table), and listed back in the same transaction.
 */
const skipReason = integrationSkipReason();

async function applyTwiceAndList(ruleset: string): Promise<string> {
  const { stdout } = await runCommand({ file: 'unshare', args: ['--net', 'nft', '-f', '-'], input: `${ruleset}${ruleset}list ruleset\n` });
  return stdout;
}

const base: IsolationRules = {
  gateway: 'fd00:3::1',
  egress: { kind: 'none' },
  pairs: [{ device: 'fd00:1::1000', container: 'fd00:3::100' }, { device: 'fd00:1::1001', container: 'fd00:3::101' }],
  ports: ['vh0123456789ab', 'vhba9876543210'],
};

describe.skipIf(skipReason)('isolation ruleset in the kernel', () => {
  it.each([
    ['egress none', base],
    ['egress any', { ...base, egress: { kind: 'any' } } as IsolationRules],
    ['egress prefixes', { ...base, egress: { kind: 'prefixes', prefixes: ['2000::/3', 'fd00:9::/64'] } } as IsolationRules],
    ['nothing known yet', { ...base, pairs: [], ports: [] }],
  ])('%s: accepted, replaced whole, listed back', async (_kind, rules) => {
    const listed = await applyTwiceAndList(buildRuleset(rules));
    expect(listed.match(/table bridge unionize/g)).toHaveLength(1);
    for (const chain of ['to_container', 'from_container', 'bridged', 'from_host', 'to_host']) expect(listed).toContain(`chain ${chain} {`);
    for (const pair of rules.pairs) expect(listed).toContain(`${pair.device} . ${pair.container}`);
    for (const port of rules.ports) expect(listed).toContain(`"${port}"`);
  });

  it('the open ruleset drops the table, and is accepted where there is none', async () => {
    const listed = await applyTwiceAndList(`${buildRuleset(base)}${openRuleset()}`);
    expect(listed).not.toContain('unionize');
  });
});
