import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'ini';
import { iniBoolean } from '@unionize/protocol';
import { repoRoot } from '../lab/repo.js';

/** The example configuration a site starts from (README, installation step 4). */
export const SITE_CONFIG = join('config', 'orchestrator.ini');

export interface SiteSql {
  /** The `[sql]` section as config/orchestrator.ini has it, line for line, but for `path` (then the given file). */
  ini: string;
  /** `[sql] enabled`, as the daemon reads it (absent: false). */
  enabled: boolean;
  /** The keys set (not commented out) in the section, as the file has them, `path` as the file has it: for the report. */
  settings: Record<string, string>;
}

/**
 * The `[sql]` section of config/orchestrator.ini, for a bench orchestrator to
 * run with the store a site gets from the example: the section's lines are
 * copied as they are (so the daemon reads every setting the way it does on a
 * site, with its own parser and defaults), only `path` moved to `path`, a file
 * of the bench's own. `text` is for tests.
 */
export function siteSql(path: string, text = readFileSync(join(repoRoot(), SITE_CONFIG), 'utf8')): SiteSql {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /^\s*\[sql\]\s*$/.test(l));
  if (start < 0) return { ini: `[sql]\npath = ${path}\n`, enabled: false, settings: {} };
  const after = lines.findIndex((l, i) => i > start && /^\s*\[/.test(l));
  const body = lines.slice(start + 1, after < 0 ? lines.length : after);
  const raw = (parse(['[sql]', ...body].join('\n')).sql ?? {}) as Record<string, unknown>;
  const settings = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
  const kept = body.filter((l) => !/^\s*path\s*=/.test(l));
  const enabled = iniBoolean.safeParse(raw.enabled ?? false).data === true;
  return { ini: ['[sql]', ...kept, `path = ${path}`, ''].join('\n'), enabled, settings };
}
