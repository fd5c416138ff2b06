'use strict';
// The Node package as a user sees it: require time, start and stop latencies, the RSS a running
// instance adds, and the event-loop delay the embedded services add to the host process while
// 100k DogStatsD metrics/s and a steady trace load flow through them.
//
//   node bench/bench_node.js [--seconds 10] [--rate 100000] [--runs 20] [--rss-runs 3]
//                            [--lifecycle-only] [--json]
//
// --lifecycle-only skips the event-loop-delay rounds (what bench/footprint.py needs); --json
// prints the result on one line (it is JSON either way). The footprint figures come from fresh
// processes (this file with --rss-child <intake URL>, run with --expose-gc; a full GC before each
// reading): RSS (/proc/self/statm) after require and before start, the first start of the process
// to both READY, RSS after 100 ms idle, and RSS with 100,000 live contexts (the lines of
// bench_lifecycle.c, 100 names x 1000 values of one tag, in datagrams of at most 8000 bytes, at
// most 800 lines sent and not yet counted, until the stats count 100,000 contexts). The child
// ends itself (SIGKILL) without the final flush: 100k series would only keep the intake decoding.
//
// The load comes from a child process (this file with --load), so what is measured in this
// process is only what the services cost it. The fake intake (tests/intake, Python) receives the
// flushes in a third process. Event-loop delay: perf_hooks.monitorEventLoopDelay at 1 ms
// resolution, p50/p99/max over each window; the windows alternate: no services and no load, the
// same load on the services in a child process (a sidecar), the load on the embedded services.
const { spawn, spawnSync } = require('node:child_process');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const dgram = require('node:dgram');
const http = require('node:http');
const path = require('node:path');

const REPO = path.join(__dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes) => (bytes / 1048576).toFixed(2);

// ---- load generator (child process) -----------------------------------------------------------
// argv: --load <dsdPort> <tracePort> <metrics/s> <seconds>. Every 10 ms: rate/100 metric lines,
// 8 to a datagram (as a buffering client packs them), 200 contexts; 5 trace requests per second,
// each 10 traces of 5 spans (250 spans/s). Prints {lines, datagrams, traceRequests}.
function runLoad() {
  const [dsdPort, tracePort, rate, seconds] = process.argv.slice(3).map(Number);
  const msgpack = require(path.join(REPO, 'tests', 'js', 'helpers', 'msgpack.js'));
  const socket = dgram.createSocket('udp4');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const perTick = Math.round(rate / 100);
  const lines = [];
  for (let i = 0; i < 200; i++) {
    const kind = ['c', 'g', 'h', 'd'][i % 4];
    lines.push(`bench.metric.${i % 50}:${i}|${kind}|#route:/r${i % 7},env:bench,host_group:${i % 3}`);
  }
  let sent = 0;
  let datagrams = 0;
  let traceRequests = 0;
  let n = 0;
  const started = Date.now();
  // Every 10 ms, catch up to rate x elapsed time (timers run late on a busy machine).
  const tick = setInterval(() => {
    const due = Math.min(Math.round(((Date.now() - started) / 1000) * rate), sent + 4 * perTick);
    while (sent < due) {
      const batch = [];
      for (let j = 0; j < 8 && sent + batch.length < due; j++) batch.push(lines[n++ % lines.length]);
      socket.send(batch.join('\n'), dsdPort, '127.0.0.1');
      sent += batch.length;
      datagrams++;
    }
  }, 10);
  let id = 1;
  const traces = setInterval(() => {
    const now = BigInt(Date.now()) * 1000000n;
    const body = [];
    for (let t = 0; t < 10; t++) {
      const traceId = id++;
      const spans = [];
      for (let s = 0; s < 5; s++) {
        spans.push({
          trace_id: traceId, span_id: traceId * 10 + s, parent_id: s ? traceId * 10 : 0, name: 'web.request',
          service: 'bench', resource: `GET /r${s}`, type: 'web', start: now, duration: 1000000 + s,
          error: 0, meta: { 'http.method': 'GET', 'http.url': `/r${s}?q=1`, env: 'bench' }, metrics: { _sampling_priority_v1: 1 },
        });
      }
      body.push(spans);
    }
    const payload = msgpack.encode(body);
    const req = http.request({
      host: '127.0.0.1', port: tracePort, method: 'PUT', path: '/v0.4/traces', agent,
      headers: { 'content-type': 'application/msgpack', 'x-datadog-trace-count': '10', 'content-length': payload.length },
    }, (res) => {
      res.resume();
      traceRequests++;
    });
    req.on('error', () => {});
    req.end(payload);
  }, 200);
  setTimeout(() => {
    clearInterval(tick);
    clearInterval(traces);
    const elapsed = (Date.now() - started) / 1000;
    setTimeout(() => {
      socket.close();
      agent.destroy();
      process.stdout.write(JSON.stringify({ lines: sent, datagrams, traceRequests, seconds: elapsed }));
    }, 300);
  }, seconds * 1000);
}

// ---- footprint (child process) -----------------------------------------------------------------
function statmRss() {
  const fields = require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ');
  return Number(fields[1]) * 4096;
}

function gcRss() {
  if (global.gc) global.gc();
  return statmRss();
}

async function rssChild(url) {
  const { DatadogServices } = require(REPO);
  const config = {
    apiKey: 'bench-key-0123456789abcdef', ddUrl: url, apmDdUrl: url, dogstatsdPort: 0, apmReceiverPort: 0, logLevel: 'warn',
  };
  const s = new DatadogServices();
  const before = gcRss();
  const t0 = process.hrtime.bigint();
  await s.start(config); // resolves once both services are bound and both 'ready' were delivered
  const firstReadyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await sleep(100);
  const idle = gcRss();
  const jsIdle = process.memoryUsage();

  const N = 100000;
  const socket = dgram.createSocket('udp4');
  const port = s.ports.dogstatsd;
  // One datagram buffer, reused once its send completed, lines written into it byte by byte: the
  // sender leaves (almost) nothing on the JS heap, so the RSS is the services'.
  const buf = Buffer.alloc(8192);
  const send = (len) => new Promise((resolve) => socket.send(buf, 0, len, port, '127.0.0.1', resolve));
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const head = Buffer.from('footprint.metric.');
  const mid = Buffer.from(':1|c|#ctx:');
  const tail = Buffer.from(',env:bench,service:footprint');
  const writeInt = (at, v) => {
    const digits = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : 5;
    for (let d = digits - 1, x = v; d >= 0; d--, x = Math.floor(x / 10)) buf[at + d] = 48 + (x % 10);
    return at + digits;
  };
  const writeLine = (at, i) => {
    at += head.copy(buf, at);
    at = writeInt(at, i % 100);
    at += mid.copy(buf, at);
    at = writeInt(at, Math.floor(i / 100));
    return at + tail.copy(buf, at);
  };
  for (let pass = 0; pass < 3; pass++) {
    const base = s.stats().dsdMetricLines;
    let sent = 0;
    const deadline = Date.now() + 20000;
    let n = 0;
    let inBuf = 0;
    for (let i = 0; i <= N; i++) {
      if (n && (i === N || n + 1 + 80 > 8000)) { // a line is at most 80 bytes
        while (sent > s.stats().dsdMetricLines - base + 800 && Date.now() < deadline) await tick();
        await send(n);
        sent += inBuf;
        n = 0;
        inBuf = 0;
      }
      if (i < N) {
        if (n) buf[n++] = 10;
        n = writeLine(n, i);
        inBuf++;
      }
    }
    let last = s.stats().dsdMetricLines;
    let quiet = Date.now();
    while (s.stats().dsdMetricLines - base < sent && Date.now() - quiet < 500) {
      await sleep(1);
      const now = s.stats().dsdMetricLines;
      if (now !== last) {
        last = now;
        quiet = Date.now();
      }
    }
    if (s.stats().dsdContexts >= N) break;
  }
  socket.close();
  await sleep(20);
  const st = s.stats();
  const rss100k = gcRss();
  const js100k = process.memoryUsage();
  const out = {
    rss_before: before, rss_idle: idle, rss_100k: rss100k, first_ready_s: firstReadyMs / 1000,
    // what the JS side (this benchmark's sender included) holds more than when idle
    js_heap_external_added: js100k.heapTotal + js100k.external - jsIdle.heapTotal - jsIdle.external,
    contexts: st.dsdContexts, lines: st.dsdMetricLines, contexts_dropped: st.dsdContextsDropped,
  };
  // No final flush: process.exit() would stop the services (their 'exit' hook) and send the 100k
  // series, which would only keep the fake intake decoding. The child ends itself at once instead.
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.kill(process.pid, 'SIGKILL'));
}

function footprint(url, runs) {
  const got = [];
  for (let i = 0; i < runs; i++) {
    const out = spawnSync(process.execPath, ['--expose-gc', __filename, '--rss-child', url], { encoding: 'utf8', timeout: 120000 });
    let res;
    try {
      res = JSON.parse(out.stdout);
    } catch {
      res = null;
    }
    if (out.signal !== 'SIGKILL' || !res || res.contexts < 100000) {
      throw new Error(`footprint child failed (${out.status}, ${out.signal}): ${out.stdout} ${out.stderr}`);
    }
    got.push(res);
  }
  const med = (f) => median(got.map(f));
  return {
    rss_before: med((g) => g.rss_before),
    rss_idle_added: med((g) => g.rss_idle - g.rss_before),
    rss_100k_added: med((g) => g.rss_100k - g.rss_before),
    first_ready_s: med((g) => g.first_ready_s),
    js_heap_external_added: med((g) => g.js_heap_external_added),
  };
}

// ---- measurements (this process) --------------------------------------------------------------
function requireTime(runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const out = spawnSync(process.execPath, ['-e',
      `const t = process.hrtime.bigint(); require(${JSON.stringify(REPO)}); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6))`],
    { encoding: 'utf8' });
    times.push(Number(out.stdout));
  }
  return times;
}

// What a function's cold start pays before clients may send: require, then services.start()
// resolved (both listeners bound), in a fresh process.
function requireToStartedTime(runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const out = spawnSync(process.execPath, ['-e',
      `const t = process.hrtime.bigint(); const { services } = require(${JSON.stringify(REPO)});
       services.start({ dogstatsdPort: 0, apmReceiverPort: 0, logLevel: 'error' }).then(() => {
         process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));
         return services.stop();
       });`],
    { encoding: 'utf8' });
    times.push(Number(out.stdout));
  }
  return times;
}

async function startIntake() {
  const { Intake } = require(path.join(REPO, 'tests', 'js', 'helpers', 'intake.js'));
  return Intake.start();
}

async function eventLoopDelay(seconds) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // A light application workload on the measured loop: a timer every 5 ms.
  const app = setInterval(() => {}, 5);
  h.enable();
  await sleep(seconds * 1000);
  h.disable();
  clearInterval(app);
  return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, mean: h.mean / 1e6 };
}

function runChildLoad(ports, rate, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--load', String(ports.dogstatsd), String(ports.traceAgent), String(rate), String(seconds)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.on('error', reject);
    child.on('close', () => resolve(JSON.parse(out)));
  });
}

// The control: the same services in a child process of their own (a sidecar), under the same
// load. What the embedded services add beyond it is what embedding costs the host's event loop;
// the rest is the load generator and the intake competing for the machine's two cores.
function startSidecar(config) {
  return new Promise((resolve, reject) => {
    const script = `const { services } = require(${JSON.stringify(REPO)});
      services.start(${JSON.stringify({ ...config, keepAlive: true })}).then(() => console.log(JSON.stringify(services.ports)));
      process.on('SIGTERM', () => services.stop().then(() => process.exit(0)));`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (chunk) => resolve({ child, ports: JSON.parse(String(chunk)) }));
    child.on('error', reject);
  });
}

function stopSidecar(sidecar) {
  return new Promise((resolve) => {
    sidecar.child.once('close', resolve);
    sidecar.child.kill('SIGTERM');
  });
}

async function main() {
  const seconds = arg('seconds', 10);
  const rate = arg('rate', 100000);
  const runs = arg('runs', 20);
  const rssRuns = arg('rss-runs', 3);
  const lifecycleOnly = process.argv.includes('--lifecycle-only');
  const rss0 = process.memoryUsage().rss;

  const requireMs = requireTime(Math.max(10, runs));
  const requireStartedMs = requireToStartedTime(Math.max(3, Math.floor(runs / 4)));
  const t0 = process.hrtime.bigint();
  const { services, DatadogServices } = require(REPO);
  const requireHere = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssRequired = process.memoryUsage().rss;

  const intake = await startIntake();
  const config = intake.config({ logLevel: 'error' });

  // The first running instance: what it adds to the RSS.
  await services.start(config);
  const rssStarted = process.memoryUsage().rss;
  await services.stop();

  // Event-loop delay, alternating windows: neither services nor load, then services under load.
  // The machine is shared: the rounds show how much of a difference is noise.
  const rounds = [];
  let load;
  let before;
  let after;
  let cpu;
  let rssLoaded = 0;
  for (let r = 0; r < (lifecycleOnly ? 0 : 3); r++) {
    const baseline = await eventLoopDelay(seconds);
    const sidecar = await startSidecar(config);
    const [, sidecarLoaded] = await Promise.all([runChildLoad(sidecar.ports, rate, seconds), eventLoopDelay(seconds)]);
    await stopSidecar(sidecar);
    await services.start(config);
    before = services.stats();
    const cpu0 = process.cpuUsage();
    let loaded;
    [load, loaded] = await Promise.all([runChildLoad(services.ports, rate, seconds), eventLoopDelay(seconds)]);
    await sleep(300);
    cpu = process.cpuUsage(cpu0);
    after = services.stats();
    rssLoaded = Math.max(rssLoaded, process.memoryUsage().rss);
    await services.stop();
    rounds.push({ baseline, sidecarLoaded, loaded, received: after.dsdMetricLines - before.dsdMetricLines, load });
  }

  // start/stop latencies: fresh instances, nothing to send, then stop with 200 lines to send
  // (alternate runs: a kept-alive connection to the Python intake adds a 40 ms delayed ACK).
  const starts = [];
  const stops = [];
  const stopsWithData = [];
  for (let i = 0; i < runs; i++) {
    const s = new DatadogServices();
    let t = process.hrtime.bigint();
    await s.start(config);
    starts.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (i % 2) {
      const socket = dgram.createSocket('udp4');
      for (let j = 0; j < 25; j++) {
        const batch = Array.from({ length: 8 }, (_, k) => `bench.stop.${(j * 8 + k) % 20}:1|c`).join('\n');
        await new Promise((resolve) => socket.send(batch, s.ports.dogstatsd, '127.0.0.1', resolve));
      }
      socket.close();
      const deadline = Date.now() + 2000; // until the stats count the 200 lines (at most 2 s)
      while (s.stats().dsdMetricLines < 200 && Date.now() < deadline) await sleep(1);
    }
    t = process.hrtime.bigint();
    await s.stop();
    (i % 2 ? stopsWithData : stops).push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  let foot;
  try {
    foot = footprint(intake.url, rssRuns);
  } finally {
    await intake.stop();
  }

  const received = after ? after.dsdMetricLines - before.dsdMetricLines : null;
  const round = (x) => Number(x.toFixed(3));
  const result = {
    node: process.version,
    require_ms_fresh_process_median: round(median(requireMs)),
    require_ms_fresh_process_range: [round(Math.min(...requireMs)), round(Math.max(...requireMs))],
    require_ms_in_this_process: round(requireHere),
    require_ms_fresh_process_first: round(requireMs[0]),
    require_to_started_ms_fresh_process_median: round(median(requireStartedMs)),
    start_ms_median: round(median(starts)),
    stop_ms_median_nothing_to_send: round(median(stops)),
    stop_ms_median_200_lines: round(median(stopsWithData)),
    rss_added_by_require_mib: mib(rssRequired - rss0),
    rss_added_by_first_start_mib: mib(rssStarted - rssRequired),
    footprint_runs: rssRuns,
    first_start_ready_ms_fresh_process_median: round(foot.first_ready_s * 1000),
    rss_before_start_bytes_fresh_process_median: foot.rss_before,
    rss_idle_added_bytes_fresh_process_median: foot.rss_idle_added,
    rss_100k_contexts_added_bytes_fresh_process_median: foot.rss_100k_added,
    js_heap_and_external_added_by_100k_contexts_bytes_median: foot.js_heap_external_added,
    start_runs: starts.length,
    stop_200_lines_runs: stopsWithData.length,
  };
  if (!lifecycleOnly) Object.assign(result, {
    rss_peak_under_load_minus_required_mib: mib(rssLoaded - rssRequired),
    last_round_load_sent: load,
    last_round_metric_lines_received: received,
    last_round_metric_lines_per_s: Math.round(received / load.seconds),
    last_round_trace_spans_received: after.traceSpans - before.traceSpans,
    last_round_payloads_sent: after.payloadsSent - before.payloadsSent,
    last_round_payloads_dropped: after.payloadsDropped - before.payloadsDropped,
    last_round_process_cpu_percent_of_one_core: Math.round(((cpu.user + cpu.system) / 1e3 / (load.seconds * 1000)) * 100),
    eld_rounds_ms: rounds.map((r) => ({
      baseline_p50: round(r.baseline.p50), baseline_p99: round(r.baseline.p99), baseline_max: round(r.baseline.max),
      sidecar_p50: round(r.sidecarLoaded.p50), sidecar_p99: round(r.sidecarLoaded.p99), sidecar_max: round(r.sidecarLoaded.max),
      embedded_p50: round(r.loaded.p50), embedded_p99: round(r.loaded.p99), embedded_max: round(r.loaded.max),
      p99_added_vs_no_load: round(r.loaded.p99 - r.baseline.p99),
      p99_added_vs_sidecar: round(r.loaded.p99 - r.sidecarLoaded.p99),
      lines_received: r.received, lines_sent: r.load.lines,
    })),
    eld_p99_added_vs_no_load_ms_median: round(median(rounds.map((r) => r.loaded.p99 - r.baseline.p99))),
    eld_p99_added_vs_sidecar_ms_median: round(median(rounds.map((r) => r.loaded.p99 - r.sidecarLoaded.p99))),
  });
  const json = process.argv.includes('--json');
  process.stdout.write(`${json ? JSON.stringify(result) : JSON.stringify(result, null, 2)}\n`);
}

if (process.argv[2] === '--load') runLoad();
else if (process.argv[2] === '--rss-child') rssChild(process.argv[3]).catch((err) => {
  console.error(err);
  process.exit(1);
});
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});
