'use strict';
// The fake Datadog intake (tests/intake/, Python) as a child process, driven over its HTTP
// control API, plus the small helpers every Node test uses. Everything listens on 127.0.0.1 and
// every wait is bounded in time.
const { spawn, spawnSync } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');
const PYTHON = fs.existsSync(path.join(REPO, '.venv', 'bin', 'python')) ? path.join(REPO, '.venv', 'bin', 'python') : 'python3';

const SERIES = '/api/v2/series';
const SKETCHES = '/api/beta/sketches';
const CHECK_RUN = '/api/v1/check_run';
const EVENTS = '/api/v1/events';
const TRACES = '/api/v0.2/traces';

// Tests set what they need themselves: nothing from the machine's DD_* environment leaks in, and
// no proxy stands between the code and 127.0.0.1.
for (const name of Object.keys(process.env)) {
  if (name.startsWith('DD_') || /^(https?|all)_proxy$/i.test(name)) delete process.env[name];
}
process.env.NO_PROXY = '127.0.0.1,localhost';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(what, predicate, timeoutMs = 10000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await predicate();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const out = spawnSync('openssl', [
    'req', '-x509', '-nodes', '-days', '1', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { encoding: 'utf8', timeout: 20000 });
  if (out.status !== 0) throw new Error(`openssl failed: ${out.stderr}`);
  return { cert, key, ca: fs.readFileSync(cert) };
}

class Intake {
  static async start({ tls = false } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dds-intake-'));
    const portFile = path.join(dir, 'port');
    const args = ['-m', 'tests.intake', '--port', '0', '--port-file', portFile];
    const certs = tls ? makeCert(dir) : null;
    if (certs) args.push('--tls-cert', certs.cert, '--tls-key', certs.key);
    const child = spawn(PYTHON, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    try {
      await waitUntil('the fake intake to listen', () => {
        if (exited) throw new Error(`the fake intake exited: ${stderr}`);
        return fs.existsSync(portFile);
      }, 30000, 20);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    const port = Number(fs.readFileSync(portFile, 'utf8').trim());
    return new Intake(child, port, dir, certs);
  }

  constructor(child, port, dir, certs) {
    this.child = child;
    this.port = port;
    this.dir = dir;
    this.certs = certs;
    this.url = `${certs ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  /** Options pointing every intake URL of the services here, with any free ports. */
  config(extra = {}) {
    return {
      apiKey: 'test-key-0123456789abcdef',
      ddUrl: this.url,
      apmDdUrl: this.url,
      apmTelemetryDdUrl: this.url,
      apmProfilingDdUrl: `${this.url}/api/v2/profile`,
      evpProxyDdUrl: this.url,
      dogstatsdPort: 0,
      apmReceiverPort: 0,
      logLevel: 'warn',
      ...extra,
    };
  }

  /** The same as DD_* variables, for child processes. */
  env(extra = {}) {
    const env = { ...process.env };
    Object.assign(env, {
      DD_API_KEY: 'test-key-0123456789abcdef',
      DD_DD_URL: this.url,
      DD_APM_DD_URL: this.url,
      DD_APM_TELEMETRY_DD_URL: this.url,
      DD_APM_PROFILING_DD_URL: `${this.url}/api/v2/profile`,
      DD_DOGSTATSD_PORT: '0',
      DD_APM_RECEIVER_PORT: '0',
      DD_LOG_LEVEL: 'warn',
    }, extra);
    return env;
  }

  control(method, route, body) {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const transport = this.certs ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request({
        host: '127.0.0.1', port: this.port, method, path: route, timeout: 10000,
        ca: this.certs ? this.certs.ca : undefined,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`intake ${method} ${route}: ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`intake ${method} ${route}: timeout`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  records(route) {
    return this.control('GET', `/_control/records${route ? `?path=${encodeURIComponent(route)}` : ''}`);
  }

  async accepted(route) {
    return (await this.records(route)).filter((r) => r.status >= 200 && r.status < 300 && !r.error).map((r) => r.payload);
  }

  /** Every accepted series, flattened: {metric, type, tags, points: [[ts, value]], interval}. */
  async series() {
    return (await this.accepted(SERIES)).flatMap((p) => p.series).map((s) => ({
      metric: s.metric,
      type: String(s.type).toLowerCase(),
      tags: s.tags,
      points: s.points.map((pt) => [Number(pt.timestamp), Number(pt.value)]),
      interval: Number(s.interval),
    }));
  }

  async sketches() {
    return (await this.accepted(SKETCHES)).flatMap((p) => p.sketches);
  }

  async checks() {
    return (await this.accepted(CHECK_RUN)).flat();
  }

  async events() {
    return this.accepted(EVENTS);
  }

  /** Every span of every accepted AgentPayload, with its tracer payload's language and env. */
  async spans() {
    const out = [];
    for (const payload of await this.accepted(TRACES)) {
      for (const tp of payload.tracerPayloads) {
        for (const chunk of tp.chunks) {
          for (const span of chunk.spans) out.push({ ...span, language: tp.languageName, payloadEnv: tp.env });
        }
      }
    }
    return out;
  }

  waitFor(what, predicate, timeoutMs = 10000) {
    return waitUntil(what, () => predicate(this), timeoutMs, 100);
  }

  /** A series named `metric` (and carrying `tag`, when given), once it arrived. */
  waitForSeries(metric, tag, timeoutMs = 10000) {
    return this.waitFor(`series ${metric} ${tag || ''}`, async () => {
      const found = (await this.series()).filter((s) => s.metric === metric && (!tag || s.tags.includes(tag)));
      return found.length ? found : null;
    }, timeoutMs);
  }

  reset() {
    return this.control('POST', '/_control/reset');
  }

  fail(rule) {
    return this.control('POST', '/_control/fail', rule);
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Send DogStatsD lines over UDP to 127.0.0.1:port, one datagram each; resolves once sent. */
async function sendStatsd(port, lines) {
  const socket = dgram.createSocket('udp4');
  try {
    for (const line of Array.isArray(lines) ? lines : [lines]) {
      await new Promise((resolve, reject) => socket.send(line, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    socket.close();
  }
}

/** Run `node file args...` with env; resolves {code, signal, stdout, stderr, ms}. Killed past timeoutMs. */
function runNode(file, args = [], { env = process.env, timeoutMs = 30000, onStdout } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (onStdout) onStdout(stdout, child);
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(file)} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

module.exports = { REPO, Intake, sendStatsd, runNode, sleep, waitUntil, makeCert, SERIES, TRACES };
