#!/usr/bin/env node
// The optional native build of the project's C kernels (native/, a Node-API addon), run by npm at
// install (`npm ci`, `npm install`) and by `npm run build:native`. It uses the node-gyp that npm
// ships (npm_config_node_gyp) or an installed one, against Node's own headers when they are on
// this machine (Debian's nodejs puts them in /usr/include/node), else node-gyp's usual source.
// It never fails the install: without a compiler, headers or node-gyp, or when the build fails,
// it says so in one line and the wasm kernels run as before. CNN_CLASSROOM_NATIVE=0 skips it.
/* global console, process */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const native = path.join(root, 'native');
const say = (line) => console.log(`cnn-classroom native kernels: ${line}`);

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  const require = createRequire(import.meta.url);
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package
  }
  const npmDir = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  candidates.push(path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c !== undefined && c !== '' && existsSync(c));
}

/** A folder holding Node's headers (include/node/node_api.h) for this very Node, if any. */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefixes = [
    process.config.variables.node_prefix,
    path.resolve(process.execPath, '..', '..'),
  ];
  return prefixes.find(
    (p) => typeof p === 'string' && existsSync(path.join(p, 'include', 'node', 'node_api.h')),
  );
}

function main() {
  if (process.env.CNN_CLASSROOM_NATIVE === '0') {
    say('skipped (CNN_CLASSROOM_NATIVE=0); the WebAssembly kernels will run');
    return;
  }
  const gyp = nodeGyp();
  if (gyp === undefined) {
    say('not built (node-gyp not found); the WebAssembly kernels will run');
    return;
  }
  const dir = nodeDir();
  const args = [gyp, 'rebuild', '--directory', native, ...(dir ? [`--nodedir=${dir}`] : [])];
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    timeout: 5 * 60_000,
    env: { ...process.env, npm_config_loglevel: 'silent' },
  });
  if (r.status !== 0) {
    rmSync(path.join(native, 'build'), { recursive: true, force: true });
    const output = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n');
    // node-gyp's own summary ("gyp ERR! stack Error: ...") says what was missing.
    const stack = output.find((l) => /ERR! stack Error/.test(l))?.replace(/^.*ERR! stack /, '');
    const why = r.error?.message ?? stack ?? output.filter((l) => /error/i.test(l)).at(-1);
    say(
      `not built (${why || `node-gyp exited with ${r.status}`}); the WebAssembly kernels will run`,
    );
    return;
  }
  const addon = path.join(native, 'build', 'Release', 'cnn_classroom_kernels.node');
  try {
    const { isa } = createRequire(import.meta.url)(addon);
    say(`built in ${((Date.now() - started) / 1000).toFixed(0)} s; instruction set here: ${isa}`);
  } catch (error) {
    rmSync(path.join(native, 'build'), { recursive: true, force: true });
    say(`built but does not load (${error.message}); the WebAssembly kernels will run`);
  }
}

try {
  main();
} catch (error) {
  say(
    `not built (${error instanceof Error ? error.message : String(error)}); the WebAssembly kernels will run`,
  );
}
