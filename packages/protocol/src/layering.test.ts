import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Imports point down (issue 14): protocol is the bottom layer; orchestrator,
 * unionize, hook and ctl may import it (through `@unionize/protocol` and its
 * public subpaths) and nothing else of each other; within a package, no two
 * top-level folders of `src/` import each other, directly or round a loop
 * (a file directly in `src/` is a unit of its own). Every `.ts` file under
 * `packages/*\/src` counts, tests included, except that a test's imports make
 * no cycle: nothing imports a test.
 */

const PACKAGES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BOTTOM = 'protocol';
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm;

interface Import {
  file: string; // relative to packages/
  specifier: string;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function packageNames(): string[] {
  return readdirSync(PACKAGES_DIR).filter((name) => existsSync(join(PACKAGES_DIR, name, 'src')));
}

export function importsOf(pkg: string): Import[] {
  return tsFiles(join(PACKAGES_DIR, pkg, 'src')).flatMap((path) => {
    const file = relative(PACKAGES_DIR, path);
    return [...readFileSync(path, 'utf8').matchAll(SPECIFIER)].map((m) => ({ file, specifier: m[1]! }));
  });
}

/** `@unionize/protocol/config` is a public subpath when protocol's package.json exports `./*` or `./config`. */
function isPublicSubpath(pkg: string, subpath: string): boolean {
  const exports = (JSON.parse(readFileSync(join(PACKAGES_DIR, pkg, 'package.json'), 'utf8')) as { exports?: Record<string, unknown> }).exports ?? {};
  return subpath === '' ? '.' in exports : `./${subpath}` in exports || './*' in exports;
}

/** A package's rule breaks: (a) reaching into another package's files, (b) importing a package other than protocol. */
export function crossPackageProblems(pkg: string, imports: readonly Import[], packages: readonly string[]): string[] {
  const problems: string[] = [];
  const srcDir = join(PACKAGES_DIR, pkg, 'src');
  for (const { file, specifier } of imports) {
    if (specifier.startsWith('.')) {
      const target = resolve(PACKAGES_DIR, dirname(file), specifier);
      if (!target.startsWith(srcDir + sep)) problems.push(`${file}: ${specifier} reaches outside ${pkg}/src (use @unionize/<package>)`);
      continue;
    }
    const m = /^@unionize\/([^/]+)(?:\/(.*))?$/.exec(specifier);
    if (!m) continue; // a dependency from npm or node:
    const [, other, subpath = ''] = m;
    if (other === pkg) problems.push(`${file}: ${specifier} imports its own package by name`);
    else if (!packages.includes(other!)) problems.push(`${file}: ${specifier} is not a package of this repository`);
    else if (other !== BOTTOM) problems.push(`${file}: ${specifier}: ${pkg} may import @unionize/${BOTTOM} only`);
    else if (pkg === BOTTOM) problems.push(`${file}: ${specifier}: ${BOTTOM} imports no other package`);
    else if (subpath.startsWith('src/') || subpath.startsWith('dist/') || !isPublicSubpath(other!, subpath)) problems.push(`${file}: ${specifier} is not one of ${other}'s exports`);
  }
  return problems;
}

/** The top-level unit a file of `src/` belongs to: its first folder, or the file itself (`config.ts` → `config`). */
function unitOf(srcRelative: string): string {
  const [first, ...rest] = srcRelative.split(sep);
  return rest.length > 0 ? first! : first!.replace(/\.ts$/, '');
}

/** Edges between top-level units of one package: `api` → `store` when a file in api/ imports one in store/. */
export function folderEdges(pkg: string, imports: readonly Import[]): Map<string, Map<string, string>> {
  const srcDir = join(PACKAGES_DIR, pkg, 'src');
  const edges = new Map<string, Map<string, string>>();
  for (const { file, specifier } of imports) {
    // Nothing imports a test: its imports make no loop at run time.
    if (!specifier.startsWith('.') || file.endsWith('.test.ts')) continue;
    const from = unitOf(relative(srcDir, join(PACKAGES_DIR, file)));
    const target = resolve(PACKAGES_DIR, dirname(file), specifier);
    if (!target.startsWith(srcDir + sep)) continue;
    const to = unitOf(relative(srcDir, target).replace(/\.js$/, '.ts'));
    if (from === to) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    if (!edges.get(from)!.has(to)) edges.get(from)!.set(to, `${file} → ${specifier}`);
  }
  return edges;
}

/**
 * The folders caught in a cycle: each strongly connected component of more
 * than one unit (Tarjan), as `api ↔ openapi` with the imports inside it.
 */
export function cycles(edges: Map<string, Map<string, string>>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const out: string[] = [];
  const visit = (unit: string): void => {
    index.set(unit, index.size);
    low.set(unit, index.get(unit)!);
    stack.push(unit);
    for (const next of edges.get(unit)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(unit, Math.min(low.get(unit)!, low.get(next)!));
      } else if (stack.includes(next)) {
        low.set(unit, Math.min(low.get(unit)!, index.get(next)!));
      }
    }
    if (low.get(unit) !== index.get(unit)) return;
    const component = stack.splice(stack.indexOf(unit)).sort();
    if (component.length < 2) return;
    const inside = component.flatMap((from) => [...(edges.get(from) ?? [])].filter(([to]) => component.includes(to)).map(([, via]) => via));
    out.push(`${component.join(' ↔ ')}: ${inside.join('; ')}`);
  };
  for (const unit of [...edges.keys()].sort()) if (!index.has(unit)) visit(unit);
  return out;
}

describe('imports point down', () => {
  const packages = packageNames();

  it('finds the packages and their imports', () => {
    expect(packages).toEqual(expect.arrayContaining(['protocol', 'orchestrator', 'unionize', 'hook', 'ctl']));
    for (const pkg of packages) expect(importsOf(pkg).length).toBeGreaterThan(0);
  });

  it.each(packageNames())('%s imports only protocol, by its public name', (pkg) => {
    expect(crossPackageProblems(pkg, importsOf(pkg), packages)).toEqual([]);
  });

  it.each(packageNames())('%s: no cycle between the top-level folders of src/', (pkg) => {
    expect(cycles(folderEdges(pkg, importsOf(pkg)))).toEqual([]);
  });

  it('catches each kind of break', () => {
    const fake = (file: string, specifier: string): Import => ({ file: `orchestrator/src/${file}`, specifier });
    const packagesHere = ['protocol', 'orchestrator', 'unionize'];
    expect(crossPackageProblems('orchestrator', [fake('a/x.ts', '../../../unionize/src/api/app.js')], packagesHere)).toHaveLength(1);
    expect(crossPackageProblems('orchestrator', [fake('a/x.ts', '@unionize/unionize')], packagesHere)).toHaveLength(1);
    expect(crossPackageProblems('orchestrator', [fake('a/x.ts', '@unionize/protocol/src/hmac.js')], packagesHere)).toHaveLength(1);
    expect(crossPackageProblems('orchestrator', [fake('a/x.ts', '@unionize/protocol'), fake('a/x.ts', '@unionize/protocol/config'), fake('a/x.ts', 'zod')], packagesHere)).toEqual([]);
    const loop = folderEdges('orchestrator', [fake('api/x.ts', '../openapi/y.js'), fake('openapi/y.ts', '../store/z.js'), fake('store/z.ts', '../api/x.js'), fake('main.ts', './api/x.js')]);
    expect(cycles(loop)).toEqual([expect.stringMatching(/^api ↔ openapi ↔ store: /)]);
    expect(cycles(folderEdges('orchestrator', [fake('config.ts', './store/m.js'), fake('store/m.ts', '../config.js')]))).toHaveLength(1);
    expect(cycles(folderEdges('orchestrator', [fake('api/x.ts', './y.js'), fake('api/y.ts', '../store/z.js')]))).toEqual([]);
  });
});
