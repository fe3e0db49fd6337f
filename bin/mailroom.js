#!/usr/bin/env node
// Launches src/main.ts on Node 24 (which runs TypeScript directly) with the same V8 settings as
// `npm start`, using the Node 24 that `npm install` put in node_modules when this one is older.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// `npm start` is `node <flags> src/main.ts start`: take the flags from there, so they live in one place.
const startScript = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start;
const flags = startScript.split(/\s+/).filter((a) => a.startsWith('--'));
const major = Number(process.versions.node.split('.')[0]);
const node = major >= 24 ? process.execPath : path.join(root, 'node_modules', 'node', 'bin', 'node');
if (!existsSync(node)) {
  process.stderr.write('mailroom needs Node.js 24 or later; run `npm install` in the project first\n');
  process.exit(1);
}
const child = spawn(node, [...flags, path.join(root, 'src', 'main.ts'), ...process.argv.slice(2)], {
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
