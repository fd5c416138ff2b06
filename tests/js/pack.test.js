'use strict';
// The npm package as users get it: `npm pack`, installed into an empty directory with no
// compiler available (CC/CXX point at /bin/false, so a fallback compile would fail the install),
// then used there from CommonJS and ESM against the fake intake. Needs the prebuild
// (npm run prebuildify; scripts/test-node makes it).
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Intake, REPO, runNode } = require('./helpers/intake');

const npm = (args, cwd, env = process.env) => {
  const out = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 180000 });
  assert.equal(out.status, 0, `npm ${args.join(' ')}: ${out.stdout}\n${out.stderr}`);
  return out.stdout;
};

let intake;
let work;
test.before(async () => {
  intake = await Intake.start();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dds-pack-'));
});
test.after(async () => {
  await intake.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

test('npm pack -> npm install in an empty directory without a compiler -> it works there', async (t) => {
  const prebuilds = path.join(REPO, 'prebuilds', `${process.platform}-${process.arch}`);
  assert.ok(fs.existsSync(prebuilds) && fs.readdirSync(prebuilds).some((f) => f.endsWith('.node')),
    `no prebuild in ${prebuilds}: run npm run prebuildify first`);

  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], REPO));
  const tarball = path.join(work, packed.filename);
  t.diagnostic(`tarball ${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${packed.files.length} files`);
  const files = packed.files.map((f) => f.path);
  for (const needed of ['node_addon/index.js', 'node_addon/index.mjs', 'node_addon/index.d.ts', 'binding.gyp',
    'src_c/include/datadog_serverless.h', 'package.json', 'README.md', 'docs/API-NODE.md', 'docs/MIGRATING.md',
    'docs/TROUBLESHOOTING.md', 'docs/TUNING.md', 'docs/DESIGN.md']) {
    assert.ok(files.includes(needed), `${needed} missing from the tarball`);
  }
  assert.ok(files.some((f) => f.startsWith('prebuilds/linux-x64/') && f.endsWith('.node')));
  assert.ok(!files.some((f) => f.startsWith('tests/') || f.startsWith('build/') || f.startsWith('src_c/cli/')), files.join('\n'));
  assert.ok(packed.size < 2 * 1024 * 1024, `${packed.size} bytes`);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const noCompiler = { ...process.env, CC: '/bin/false', CXX: '/bin/false', npm_config_build_from_source: '' };
  npm(['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], app, noCompiler);
  const installed = path.join(app, 'node_modules', '@datadog', 'serverless-node');
  assert.ok(fs.existsSync(path.join(installed, 'prebuilds')));
  assert.ok(!fs.existsSync(path.join(installed, 'build')), 'nothing was compiled at install');

  fs.writeFileSync(path.join(app, 'use.cjs'), `
const dgram = require('node:dgram');
const { services } = require('@datadog/serverless-node');
services.registerCleanupHook();
services.start().then(() => {
  const socket = dgram.createSocket('udp4');
  socket.send('packed.cjs:1|c', services.ports.dogstatsd, '127.0.0.1', () => socket.close());
});
`);
  fs.writeFileSync(path.join(app, 'use.mjs'), `
import dgram from 'node:dgram';
import { services, version } from '@datadog/serverless-node';
await services.start();
const socket = dgram.createSocket('udp4');
await new Promise((resolve) => socket.send('packed.esm:1|c', services.ports.dogstatsd, '127.0.0.1', resolve));
socket.close();
await services.stop();
console.log(version);
`);
  for (const script of ['use.cjs', 'use.mjs']) {
    const out = await runNode(path.join(app, script), [], { env: intake.env(), timeoutMs: 15000 });
    assert.equal(out.code, 0, `${script}: ${out.stderr}`);
  }
  await intake.waitForSeries('packed.cjs');
  await intake.waitForSeries('packed.esm');
});
