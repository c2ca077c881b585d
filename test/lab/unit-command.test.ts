import { describe, expect, it } from 'vitest';
import { unitCommand, unitEnvironment } from './unit-command.js';

describe('unitEnvironment', () => {
  it('takes the assignments in order, and an empty Environment= drops those before it, as systemd does', () => {
    expect(unitEnvironment('[Service]\nEnvironment=A=1 B=2\nEnvironment=C=3\n')).toEqual(['A=1', 'B=2', 'C=3']);
    expect(unitEnvironment('[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=C=3\n')).toEqual(['C=3']);
    expect(unitEnvironment('[Service]\nExecStart=/bin/true\n')).toEqual([]);
  });

  it('refuses what it would read differently from systemd', () => {
    expect(() => unitEnvironment('Environment="A=1 2"\n', 'x.service')).toThrow(/^x\.service: Environment="A=1 is not NAME=VALUE/);
    expect(() => unitEnvironment('Environment=A=%h\n')).toThrow(/specifiers/);
  });
});

describe('unitCommand', () => {
  it("starts each daemon's bundle with its unit's environment and node options", () => {
    for (const unit of ['orchestrator.service', 'unionize.service'] as const) {
      const argv = unitCommand(unit);
      expect(argv[0]).toBe('env');
      expect(argv).toContain('MALLOC_ARENA_MAX=1');
      if (unit === 'orchestrator.service') expect(argv).toContain('MALLOC_MMAP_THRESHOLD_=65536');
      expect(argv).toContain(process.execPath);
      expect(argv.at(-1)).toMatch(/\/dist\/bundle\/(orchestrator|unionize)\.mjs$/);
    }
  });
});
