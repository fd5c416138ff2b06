'use strict';
// Build helper for npm scripts and binding.gyp.
//   node node_addon/build.js install      npm's install step: use the prebuild when it loads, else compile
//   node node_addon/build.js rebuild      compile build/Release/datadog_serverless.node
//   node node_addon/build.js prebuildify  compile and copy a stripped N-API prebuild into prebuilds/
// binding.gyp calls cSources() for the list of C files.
//
// node-gyp downloads Node's headers unless it is told where they are. Every Node install that
// has them keeps them in <prefix>/include/node (Debian's and the official tarballs alike), so
// when npm_config_nodedir is not set and that folder has them, it is set to <prefix>: the build
// then works offline, without relying on anyone's .npmrc.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');

function cSources() {
  const out = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.c') && rel !== 'src_c/cli/main.c') out.push(rel);
    }
  };
  walk('src_c');
  return out.sort();
}

function buildEnv() {
  const env = { ...process.env };
  if (!env.JOBS && !env.npm_config_jobs) env.JOBS = '2';  // node-gyp's make -j; this project plans for 2 cores
  if (!env.npm_config_nodedir) {
    const prefix = path.resolve(path.dirname(process.execPath), '..');
    const headers = path.join(prefix, 'include', 'node');
    if (fs.existsSync(path.join(headers, 'node_api.h')) && fs.existsSync(path.join(headers, 'common.gypi'))) {
      env.npm_config_nodedir = prefix;
    }
  }
  return env;
}

function run(bin, args) {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: root, env: buildEnv(), stdio: 'inherit' });
  if (result.error) throw result.error;
  return result.status === null ? 1 : result.status;
}

function main(command) {
  switch (command) {
    case 'install':
      return run(require.resolve('node-gyp-build/bin.js'), []);
    case 'rebuild':
      return run(require.resolve('node-gyp/bin/node-gyp.js'), ['rebuild']);
    case 'prebuildify':
      return run(require.resolve('prebuildify/bin.js'), ['--napi', '--strip']);
    default:
      process.stderr.write('usage: node node_addon/build.js install|rebuild|prebuildify\n');
      return 2;
  }
}

module.exports = { cSources };

if (require.main === module) process.exitCode = main(process.argv[2]);
