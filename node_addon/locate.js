'use strict';
// Which native addon file node-gyp-build would pick, found without loading node-gyp-build: that
// module and its resolve() (it parses package.json, probes /etc/alpine-release, ...) were about
// 2.5 ms of the 4.6 ms a require of the published package took (bench/HISTORY.md).
//
// The same order and the same rules as node-gyp-build 4.8's resolve(): the first .node file of
// build/Release, then of build/Debug, then the most specific matching file of
// prebuilds/<platform>-<arch>/ (runtime, abi, napi, uv, armv and libc tags). Whatever this does not
// cover returns undefined, and binding.js asks node-gyp-build itself: the variables that change
// its answer (PREBUILDS_ONLY, LIBC, npm_config_arch, ...), Electron and NW.js, multi-arch or
// missing prebuild folders, the prebuilds next to the node binary.
const fs = require('fs');
const path = require('path');

function nodeFilesIn(dir) {
  try {
    return fs.readdirSync(dir).filter((name) => name.endsWith('.node')).map((name) => path.join(dir, name));
  } catch {
    return [];
  }
}

function parseTags(file) {
  const parts = file.split('.');
  if (parts.pop() !== 'node') return undefined;
  const tags = { file, specificity: 0 };
  for (const tag of parts) {
    if (tag === 'node' || tag === 'electron' || tag === 'node-webkit') tags.runtime = tag;
    else if (tag === 'napi') tags.napi = true;
    else if (tag.startsWith('abi')) tags.abi = tag.slice(3);
    else if (tag.startsWith('uv')) tags.uv = tag.slice(2);
    else if (tag.startsWith('armv')) tags.armv = tag.slice(4);
    else if (tag === 'glibc' || tag === 'musl') tags.libc = tag;
    else continue;
    tags.specificity++;
  }
  return tags;
}

// node-gyp-build's override of the package's folder: <package name, upper case, - as _>_PREBUILD.
const PREBUILD_VARIABLE = '@DATADOG/SERVERLESS_NODE_PREBUILD';

function locate(root, env = process.env) {
  if (env[PREBUILD_VARIABLE] || env.PREBUILDS_ONLY || env.npm_config_arch || env.npm_config_platform || env.LIBC ||
      env.ARM_VERSION || env.ELECTRON_RUN_AS_NODE || process.versions.electron || process.versions.nw) {
    return undefined;
  }
  for (const dir of ['Release', 'Debug']) {
    const first = nodeFilesIn(path.join(root, 'build', dir))[0];
    if (first) return first;
  }
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  let files;
  try {
    files = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const abi = process.versions.modules;
  const uv = (process.versions.uv || '').split('.')[0];
  const armv = process.arch === 'arm64' ? '8' : ((process.config && process.config.variables) || {}).arm_version || '';
  const libc = process.platform === 'linux' && fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  const candidates = files.map(parseTags).filter((t) => t && !(t.runtime && t.runtime !== 'node') &&
    !(t.abi && t.abi !== abi && !t.napi) && !(t.uv && t.uv !== uv) && !(t.armv && t.armv !== armv) &&
    !(t.libc && t.libc !== libc));
  candidates.sort((a, b) => {
    if (a.runtime !== b.runtime) return a.runtime === 'node' ? -1 : 1;
    if (a.abi !== b.abi) return a.abi ? -1 : 1;
    return b.specificity - a.specificity;
  });
  return candidates.length ? path.join(dir, candidates[0].file) : undefined;
}

module.exports = { locate, nodeFilesIn, PREBUILD_VARIABLE };
