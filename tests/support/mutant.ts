// Builds a mutant (tests/fixtures/mutants.ts) as a runnable server and client: a copy of its stage's .ts
// files in a fresh folder at the repository root, .mutant-<pid>-<name>/, so that the copies'
// "#shared/..." imports still reach the real shared code. An edit in a shared file edits a copy
// of that file, placed in the mutant folder, which the stage's copies are pointed at.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { findStage } from '../../conformance/stages.ts';
import type { Mutant } from '../fixtures/mutants.ts';
import { repoRoot } from '../../conformance/harness/checks.ts';
import { shellQuote } from '../../conformance/harness/run-command.ts';

export interface BuiltMutant {
  /** The mutant's folder (absolute); it is gitignored and not type-checked. */
  folder: string;
  /** A grader --server command: the mutant's main.ts as a server on {port}. */
  serverCommand: string;
  /** A grader --client command: the mutant's main.ts as a client (the checks append its options). */
  clientCommand: string;
  /** Deletes the folder. Safe to call more than once. */
  cleanup(): void;
}

export function buildMutant(mutant: Mutant, root = repoRoot): BuiltMutant {
  const stage = findStage(mutant.stage);
  if (!stage) throw new Error(`mutant "${mutant.name}": unknown stage ${mutant.stage}`);
  const folderName = `.mutant-${process.pid}-${mutant.name}`;
  const folder = join(root, folderName);
  const cleanup = () => rmSync(folder, { recursive: true, force: true });
  cleanup();
  mkdirSync(folder);
  try {
    const stageFiles = readdirSync(join(root, stage.folder)).filter((file) => file.endsWith('.ts'));
    for (const file of stageFiles) copyFileSync(join(root, stage.folder, file), join(folder, file));

    let edited: string; // the mutant folder's copy of mutant.file
    if (dirname(mutant.file) === stage.folder) {
      edited = join(folder, basename(mutant.file));
    } else if (dirname(mutant.file) === 'shared') {
      edited = join(folder, basename(mutant.file));
      copySharedFile(join(root, mutant.file), edited, root);
      const oldImport = `'#${mutant.file}'`;
      const newImport = `'./${basename(mutant.file)}'`;
      const importers = stageFiles.filter((file) => replaceAll(join(folder, file), oldImport, newImport));
      if (importers.length === 0) throw new Error(`mutant "${mutant.name}": no file of ${stage.folder} imports ${oldImport}, so the edited copy would never run`);
    } else {
      throw new Error(`mutant "${mutant.name}": ${mutant.file} is neither in ${stage.folder}/ nor in shared/`);
    }
    applyEdit(mutant, edited);
  } catch (error) {
    cleanup();
    throw error;
  }
  return {
    folder,
    serverCommand: `cd ${shellQuote(root)} && "${process.execPath}" --import tsx ${folderName}/main.ts server --host 127.0.0.1 --port {port}`,
    clientCommand: `cd ${shellQuote(root)} && "${process.execPath}" --import tsx ${folderName}/main.ts client`,
    cleanup,
  };
}

/** Replaces the mutant's `find` with its `replace`, which must occur exactly once. */
function applyEdit(mutant: Mutant, path: string): void {
  const text = readFileSync(path, 'utf8');
  const count = text.split(mutant.find).length - 1;
  if (count !== 1) {
    throw new Error(
      `mutant "${mutant.name}": the text to find occurs ${count} times in ${mutant.file} (it must occur exactly once): ` +
        `the reference changed, so update this mutant in tests/fixtures/mutants.ts. Text: ${JSON.stringify(mutant.find)}`,
    );
  }
  writeFileSync(path, text.replace(mutant.find, () => mutant.replace)); // a function: "$&" in replace stays literal
}

/** Copies a shared file next to the stage copies, its relative imports rewritten as "#shared/..." to still reach shared/. */
function copySharedFile(from: string, to: string, root: string): void {
  const sharedFolder = join(root, 'shared');
  const text = readFileSync(from, 'utf8').replace(/(from\s+')(\.{1,2}\/[^']+)(')/g, (_, start: string, spec: string, end: string) => {
    return `${start}#shared/${relative(sharedFolder, resolve(dirname(from), spec))}${end}`;
  });
  writeFileSync(to, text);
}

/** Replaces every `from` in the file at `path` with `to`; returns whether there was any. */
function replaceAll(path: string, from: string, to: string): boolean {
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) return false;
  writeFileSync(path, text.replaceAll(from, to));
  return true;
}
