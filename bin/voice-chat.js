#!/usr/bin/env node
// npx voice-chat NN [server | client ...]: runs stage NN's main.ts with the arguments as typed.
// The same as `npm run stage:NN -- ...`, without the "--" that npm otherwise needs (and whose
// absence makes npm take the options for itself). Plain JavaScript, because Node cannot start a
// .ts file by itself: tsx is registered here, then the stage's main.ts is imported in this process.
import { readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const stages = readdirSync(root)
  .filter((folder) => /^\d\d-/.test(folder) && existsSync(join(root, folder, 'main.ts')))
  .sort();
const usage = `usage: npx voice-chat NN [server | client --name NAME ...]   (NN: ${stages.map((folder) => folder.slice(0, 2)).join(', ')})
  npx voice-chat 04              a local demo of stage 04
  npx voice-chat 04 server       the stage 04 server
  npx voice-chat 04 --help       every option`;

const [stageArg, ...rest] = process.argv.slice(2);
if (stageArg === undefined || stageArg === '--help' || stageArg === '-h') {
  console.log(usage);
  process.exit(stageArg === undefined ? 2 : 0);
}
const id = stageArg.replace(/^stage:?/, '').padStart(2, '0');
const folder = stages.find((name) => name.startsWith(`${id}-`));
if (folder === undefined) {
  console.error(`error: no stage "${stageArg}"\n${usage}`);
  process.exit(2);
}

register();
// Usage lines and hints then show this form (see COMMAND_ENV in shared/cli.ts).
process.env.VOICE_CHAT_COMMAND = `npx voice-chat ${id}`;
// The stage parses process.argv from its third entry on: drop the stage number.
process.argv.splice(2, process.argv.length - 2, ...rest);
await import(pathToFileURL(join(root, folder, 'main.ts')).href);
