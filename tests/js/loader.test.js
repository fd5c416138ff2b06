'use strict';
// require('@datadog/serverless-node') loads the local build or the prebuild (node-gyp-build's
// order), falls through to the next one when a file does not load, and otherwise fails with an
// error that lists everything it tried.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { REPO, runNode } = require('./helpers/intake');

function fakePackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dds-loader-'));
  fs.mkdirSync(path.join(dir, 'node_addon'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  for (const file of ['binding.js', 'locate.js', 'index.js']) fs.copyFileSync(path.join(REPO, 'node_addon', file), path.join(dir, 'node_addon', file));
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(REPO, 'node_modules', 'node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'));
  return dir;
}

test('no build and no prebuild: the error lists what was tried and what to install', async () => {
  const dir = fakePackage();
  try {
    const probe = await runNode(path.join(dir, 'node_addon', 'index.js'));
    assert.notEqual(probe.code, 0);
    assert.match(probe.stderr, /ERR_DDS_ADDON_NOT_FOUND|cannot load the native addon/);
    assert.match(probe.stderr, /Searched: .*build\/Release, .*build\/Debug, .*prebuilds\/linux-x64/);
    assert.match(probe.stderr, /Tried:\n {2}- node-gyp-build: No native build was found/);
    assert.match(probe.stderr, /libevent/);
    assert.match(probe.stderr, /npm rebuild @datadog\/serverless-node/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a local build that does not load is reported, and the prebuild is used instead', async () => {
  const dir = fakePackage();
  try {
    fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'build', 'Release', 'datadog_serverless.node'), 'not an ELF file');
    const prebuilds = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(prebuilds, { recursive: true });
    const working = require(path.join(REPO, 'node_modules', 'node-gyp-build')).resolve(REPO);
    fs.copyFileSync(working, path.join(prebuilds, 'dds.napi.node'));
    const script = `const api = require(${JSON.stringify(path.join(dir, 'node_addon', 'index.js'))});` +
      'console.log(typeof api.services.start, api.version)';
    const probe = await runNode('-e', [script]);
    assert.equal(probe.code, 0, probe.stderr);
    assert.match(probe.stdout, /^function \d+\.\d+\.\d+/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the addon reports the version of the C library, which is the package version', () => {
  const api = require(REPO);
  const cmake = fs.readFileSync(path.join(REPO, 'CMakeLists.txt'), 'utf8').match(/project\(\S+ VERSION (\S+)/)[1];
  assert.equal(api.version, require(path.join(REPO, 'package.json')).version);
  assert.equal(api.version, cmake);
});

test('locate.js picks the file node-gyp-build would pick, or leaves the choice to it', () => {
  const ngb = require(path.join(REPO, 'node_modules', 'node-gyp-build'));
  const { locate } = require(path.join(REPO, 'node_addon', 'locate.js'));
  const tuple = `${process.platform}-${process.arch}`;
  const libc = fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  const other = libc === 'glibc' ? 'musl' : 'glibc';
  const layouts = [
    ['build/Release/datadog_serverless.node', 'build/Debug/d.node', `prebuilds/${tuple}/node.napi.node`],
    ['build/Debug/d.node', `prebuilds/${tuple}/node.napi.node`],
    [`prebuilds/${tuple}/node.napi.${other}.node`, `prebuilds/${tuple}/node.napi.${libc}.node`],
    [`prebuilds/${tuple}/dds.napi.node`, `prebuilds/${tuple}/node.abi1.node`, `prebuilds/${tuple}/node.napi.uv1.${libc}.node`],
    [`prebuilds/${tuple}/node.abi${process.versions.modules}.node`, `prebuilds/${tuple}/node.napi.${libc}.node`],
    [`prebuilds/${tuple}/@datadog+serverless-node.node`, `prebuilds/${tuple}/electron.napi.node`, `prebuilds/${tuple}/readme.txt`],
  ];
  for (const files of layouts) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dds-locate-'));
    try {
      for (const file of files) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), '');
      }
      const picked = locate(dir, {});
      assert.ok(picked, `locate gave up on ${files}`);
      assert.equal(picked, ngb.resolve(dir), `layout ${files}`);
      // What would change node-gyp-build's answer sends the choice back to it.
      assert.equal(locate(dir, { PREBUILDS_ONLY: '1' }), undefined);
      assert.equal(locate(dir, { LIBC: other }), undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  // Nothing it knows of: node-gyp-build decides (and its error is the one reported).
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'dds-locate-'));
  try {
    fs.mkdirSync(path.join(empty, 'prebuilds', tuple), { recursive: true });
    fs.writeFileSync(path.join(empty, 'prebuilds', tuple, 'electron.napi.node'), '');
    assert.equal(locate(empty, {}), undefined);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('the package loads without node-gyp-build when locate.js finds the addon', async () => {
  const script = `require(${JSON.stringify(REPO)}); console.log(Object.keys(require.cache).some((f) => f.includes('node-gyp-build')))`;
  const probe = await runNode('-e', [script]);
  assert.equal(probe.code, 0, probe.stderr);
  assert.equal(probe.stdout.trim(), 'false');
});
