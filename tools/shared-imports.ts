// Which shared/ modules a stage folder uses, and which names it imports from each: read from the
// import statements of its .ts files (no code is run), following shared/'s own imports, so a
// module a stage reaches only through another shared module counts too.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

export interface SharedUse {
  /** Every shared module the stage reaches, directly or through other shared modules ("shared/mixer.ts"). */
  reached: Set<string>;
  /** The names the stage's own files import from each shared module ("*" for a namespace import). */
  names: Map<string, Set<string>>;
}

// `import { a, type B as C } from 'x'`, `import d, * as e from 'x'`, `export { f } from 'x'`, `import 'x'`.
const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:([^'";]*?)\s+from\s+)?['"]([^'"]+)['"]/gm;

function importsOf(file: string): { spec: string; names: string[] }[] {
  const found: { spec: string; names: string[] }[] = [];
  for (const [, clause = '', spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const names: string[] = [];
    const braces = /\{([^}]*)\}/.exec(clause);
    if (braces) {
      for (const part of braces[1]!.split(',')) {
        const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!.trim();
        if (name !== '') names.push(name);
      }
    }
    const outside = clause.replace(/\{[^}]*\}/, '');
    if (/\*\s+as\s+\w+/.test(outside)) names.push('*');
    else if (/^\s*(?:type\s+)?\w+/.test(outside)) names.push('default');
    found.push({ spec: spec!, names });
  }
  return found;
}

/** The repository-relative path `spec` names from `file`, or undefined when it is not in shared/. */
function sharedTarget(root: string, file: string, spec: string): string | undefined {
  let target: string;
  if (spec.startsWith('#shared/')) target = join('shared', spec.slice('#shared/'.length));
  else if (spec.startsWith('.')) target = relative(root, join(dirname(file), spec));
  else return undefined; // a package or a Node built-in
  return target.startsWith(`shared/`) ? target : undefined;
}

function tsFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

export function sharedUse(root: string, stageFolder: string): SharedUse {
  const names = new Map<string, Set<string>>();
  const pending: string[] = [];
  for (const file of tsFiles(join(root, stageFolder))) {
    for (const { spec, names: imported } of importsOf(file)) {
      const target = sharedTarget(root, file, spec);
      if (target === undefined) continue;
      const set = names.get(target) ?? new Set<string>();
      for (const name of imported) set.add(name);
      names.set(target, set);
      pending.push(target);
    }
  }
  const reached = new Set<string>();
  while (pending.length > 0) {
    const module = pending.pop()!;
    if (reached.has(module)) continue;
    reached.add(module);
    for (const { spec } of importsOf(join(root, module))) {
      const target = sharedTarget(root, join(root, module), spec);
      if (target !== undefined) pending.push(target);
    }
  }
  return { reached, names };
}

export interface SharedChanges {
  /**
   * Shown as added files: modules the newer stage reaches and the older does not, then modules
   * the older reached only through other shared modules and the newer stage's own files import
   * (02 to 03: the frame clock, which 02 used only inside its audio sources).
   */
  added: { module: string; firstDirectUse: boolean }[];
  /** Reached by the older stage only. */
  dropped: string[];
  /** Imported directly by both, with different names. */
  changed: { module: string; gained: string[]; lost: string[] }[];
}

export function sharedChanges(older: SharedUse, newer: SharedUse): SharedChanges {
  const sorted = (items: Iterable<string>) => [...items].sort();
  const added: SharedChanges['added'] = [];
  const changed: SharedChanges['changed'] = [];
  for (const module of sorted(newer.reached)) {
    if (!older.reached.has(module)) added.push({ module, firstDirectUse: false });
  }
  for (const module of sorted(newer.names.keys())) {
    const before = older.names.get(module);
    const after = newer.names.get(module)!;
    if (before === undefined) {
      if (older.reached.has(module)) added.push({ module, firstDirectUse: true });
      continue;
    }
    const gained = sorted([...after].filter((name) => !before.has(name)));
    const lost = sorted([...before].filter((name) => !after.has(name)));
    if (gained.length > 0 || lost.length > 0) changed.push({ module, gained, lost });
  }
  return { added, dropped: sorted([...older.reached].filter((module) => !newer.reached.has(module))), changed };
}
