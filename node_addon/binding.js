'use strict';
// Loads the native addon: the local build (build/Release, build/Debug) or the prebuild for this
// platform (prebuilds/<platform>-<arch>/), in node-gyp-build's order, then whichever of the
// others exists. When none loads, the error lists every file tried and why it failed.
// node-gyp-build itself is loaded only when locate.js cannot tell what it would pick.
const path = require('path');
const { locate, nodeFilesIn } = require('./locate');

const root = path.join(__dirname, '..');

function firstLine(message) {
  return String(message).split('\n').find((line) => line.trim()) || String(message);
}

function load() {
  const tried = [];
  const seen = new Set();
  const attempt = (file) => {
    if (seen.has(file)) return undefined;
    seen.add(file);
    try {
      return require(file);
    } catch (err) {
      tried.push(`${file}: ${firstLine(err.message)}`);
      return undefined;
    }
  };

  let addon;
  let first;
  try {
    first = locate(root);
  } catch {
    first = undefined;  // node-gyp-build decides
  }
  if (first) {
    addon = attempt(first);
  } else {
    try {
      addon = attempt(require('node-gyp-build').resolve(root));
    } catch (err) {
      tried.push(`node-gyp-build: ${firstLine(err.message)}`);
    }
  }
  if (addon) return addon;
  const others = [
    ...nodeFilesIn(path.join(root, 'build', 'Release')),
    ...nodeFilesIn(path.join(root, 'build', 'Debug')),
    ...nodeFilesIn(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)),
  ];
  for (const file of others) {
    if (addon) break;
    addon = attempt(file);
  }
  if (addon) return addon;

  const searched = ['build/Release', 'build/Debug', `prebuilds/${process.platform}-${process.arch}`].map((d) => path.join(root, d));
  const err = new Error(
    `@datadog/serverless-node: cannot load the native addon for ${process.platform}-${process.arch} ` +
      `(Node ${process.version}, N-API ${process.versions.napi}).\nSearched: ${searched.join(', ')}\n` +
      `Tried:\n  - ${tried.join('\n  - ')}\n` +
      'The published package carries prebuilds for linux-x64 and linux-arm64 (glibc 2.17 or later) that need ' +
      'nothing but glibc. Elsewhere (musl/Alpine, another OS or CPU) the addon is compiled from the package\'s ' +
      'sources against the system\'s libevent 2.1, libcurl, libzstd and zlib: install a compiler, pkg-config and ' +
      'their -dev packages (Debian/Ubuntu: apt-get install build-essential pkg-config libevent-dev ' +
      'libcurl4-openssl-dev libzstd-dev zlib1g-dev), then run: npm rebuild @datadog/serverless-node',
  );
  err.code = 'ERR_DDS_ADDON_NOT_FOUND';
  throw err;
}

module.exports = load();
