import { mutants } from '/work/wt/grading20b/tests/fixtures/mutants.ts';
import { buildMutant } from '/work/wt/grading20b/tests/support/mutant.ts';
import { runCommand } from '/work/wt/grading20b/conformance/harness/run-command.ts';
import { readFileSync } from 'node:fs';
const names = process.argv.slice(2);
await Promise.all(mutants.filter((m) => names.includes(m.name)).map(async (m) => {
  const built = buildMutant(m);
  const json = `/tmp/g20b/m-${m.name}.json`;
  try {
    const extra = m.robustness === undefined ? ['--no-robustness'] : m.robustness === 'with-slow-consumer' ? ['--slow-consumer'] : [];
    const run = await runCommand(`"${process.execPath}" --import tsx grading/grade.ts`, ['--stage', m.stage, '--server', built.serverCommand, '--only', m.only, ...extra, '--json', json], { cwd: '/work/wt/grading20b', env: { ...process.env, INIT_CWD: '/work/wt/grading20b' }, timeoutMs: 200_000 });
    const r = JSON.parse(readFileSync(json, 'utf8'));
    const checks = [...r.checks, ...(r.robustness?.checks ?? [])];
    for (const c of m.caughtBy) {
      const found = checks.find((x: any) => x.name.startsWith(c.check));
      const text = found?.failure ? Object.values(found.failure).join('\n') : '(none)';
      console.log(`${m.name}: exit ${run.exitCode}; ${c.check}: passed=${found?.passed} matches=${c.says.test(text)}\n   ${text.split('\n').slice(0, 3).join('\n   ')}`);
    }
  } finally { built.cleanup(); }
}));
