import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@unionize/protocol/config';
import { makeTempDir } from '@unionize/protocol/testing/temp-dir';
import { loadHookConfig } from './config.js';
import { Spool } from './spool.js';
import { spoolWriter } from './testing/spool-writer.js';

/**
 * Issue 15, point 3: the shell hook and the flusher can never disagree on the
 * spool. The shell hook reads no INI (its wrapper or unit hands it
 * ORCHESTRATOR_HOOK_SPOOL); the flusher reads hook.ini and either reads the
 * spool dir the file means or refuses the file. Fed odd but valid files
 * (comments, inline `;` and `#`, CRLF, quotes, blanks, sections in any
 * order), a call the shell hook spools is what the flusher reads, or the
 * flusher refuses to start.
 */
const work = makeTempDir('hook-ini-');
const DUID = '00:03:00:01:02:aa:bb:cc:dd:01';

const blank = fc.constantFrom('', ' ', '\t', '  \t');
/** Mostly bare: a quoted value followed by a comment keeps its quotes (the INI reader's rule), which the schema then refuses. */
const quote = fc.constantFrom('', '', '', '', '', '', '', '', '"', "'");
const lineEnd = fc.constantFrom('\n', '\r\n');
const comment = fc.constantFrom('', ' ; the spool', ' # note', '\t;x=y', ' ;');
const fullLineComment = fc.constantFrom('; a comment', '# a comment', ';[spool]', '# dir = /elsewhere', '; dir = /elsewhere');

interface Model { server: string; dir: string }
const model = fc.record({
  server: fc.constantFrom('devnet', 'dev-net', 'ctr_1'),
  dir: fc.constantFrom('spool', 'spool dir', 'a/b', 'x.y'),
});

/** key = value, written in one of the odd ways an operator might. */
const keyLine = (key: string, value: string) =>
  fc.tuple(blank, blank, blank, quote, comment).map(([a, b, c, q, tail]) => `${a}${key}${b}=${c}${q}${value}${q}${tail}`);

function file(m: Model, dir: string, caFile: string) {
  const sections = {
    orchestrator: [keyLine('url', 'https://[::1]:8443'), keyLine('ca', caFile), keyLine('key_file', join(work, 'hook.keys'))],
    dhcp: [keyLine('server', m.server), keyLine('role', 'device')],
    spool: [keyLine('dir', dir)],
  };
  const section = (name: keyof typeof sections) =>
    fc.tuple(blank, fc.array(fc.oneof(fullLineComment, fc.constant('')), { maxLength: 2 }), ...sections[name]).map(([pad, comments, ...lines]) => [`[${name}]${pad}`, ...comments, ...lines]);
  return fc
    .tuple(fc.shuffledSubarray(['orchestrator', 'dhcp', 'spool'] as const, { minLength: 3 }), lineEnd)
    .chain(([order, end]) => fc.tuple(...order.map(section)).map((parts) => parts.flat().join(end) + end));
}

const example = model.chain((m) => {
  const dir = join(work, m.dir);
  return file(m, dir, join(work, 'ca.crt')).map((text) => ({ m: { ...m, dir }, text }));
});

describe('hook.ini: the shell hook and the flusher agree on the spool, or the flusher refuses', () => {
  it('every odd but valid file: the call the shell hook spools is the call the flusher reads, or the file is refused', () => {
    let n = 0;
    let refused = 0;
    fc.assert(
      fc.property(example, ({ m, text }) => {
        const ini = join(work, `hook-${++n}.ini`);
        writeFileSync(ini, text);
        let config;
        try {
          config = loadHookConfig({}, ini);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          refused++;
          return;
        }
        expect(config.spool.dir).toBe(m.dir);
        expect(config.dhcp.server).toBe(m.server);
        // The shell hook, pointed at the same file the way an old wrapper would, never looks at it:
        // its spool is the one its wrapper hands it, the same dir the file names.
        const writer = spoolWriter(m.dir, work, { ORCHESTRATOR_HOOK_CONFIG: ini });
        expect(writer.call(['add', DUID, 'fd00:1::1000'], { DNSMASQ_IAID: String(n) }).status).toBe(0);
        const spool = new Spool({ dir: config.spool.dir, dhcp: config.dhcp });
        const names = spool.list();
        expect(spool.read(names.at(-1)!)).toMatchObject({ ok: true, event: { iaid: String(n), server: m.server } });
        for (const name of names) spool.remove(name);
      }),
      { numRuns: 60 },
    );
    // Most files are read (and agree); a quoted value with a comment after it is refused.
    expect(refused).toBeLessThan(45);
  });

  it('the flusher refuses, with a non-zero exit and the reason, what it does not fully understand', () => {
    const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
    if (!existsSync(main)) return;
    const good = `[orchestrator]\nurl = https://[::1]:8443\nca = /ca.crt\nkey_file = /hook.keys\n[dhcp]\nserver = devnet\n[spool]\ndir = ${join(work, 'spool')}\n`;
    const odd = {
      'a key without =': good.replace('dir = ', 'dir '),
      'a typo': good.replace('dir = ', 'dri = '),
      'a quoted value with a # comment after it': good.replace(/dir = (.*)\n/, 'dir = "$1" # the spool\n'),
      'a relative dir': good.replace(/dir = .*\n/, 'dir = spool\n'),
      'a key outside any section': `dir = /x\n${good}`,
    };
    for (const [what, text] of Object.entries(odd)) {
      const ini = join(work, 'odd.ini');
      writeFileSync(ini, text);
      const r = spawnSync(process.execPath, [main, '--flush', '--interval', '10', '--config', ini], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect({ what, status: r.status }).toEqual({ what, status: 1 });
      expect(r.stderr).toMatch(/"level":"error".*config /);
    }
  });
});
