'use strict';
// Inside a test root: the npm package's front door, from a project where the packed tarball was
// installed with `npm install --ignore-scripts` (this file is copied next to its node_modules).
// Starts the services (DD_* variables set by the test), has send.py act as the clients, flushes,
// stops, and prints one JSON line of the outcome.
const { execFileSync } = require('child_process');
const path = require('path');
const { services } = require('@datadog/serverless-node');

(async () => {
  const events = [];
  await services.start({ dogstatsdPort: 0, apmReceiverPort: 0 }, (st) => events.push(st));
  const { dogstatsd, traceAgent } = services.ports;
  let sendRc = 0;
  try {
    execFileSync('python3', [process.env.DDS_SEND_PY, String(dogstatsd), String(traceAgent), 'node'], { stdio: 'inherit' });
  } catch (err) {
    sendRc = err.status ?? 1;
  }
  let flushError = null;
  try {
    await services.flush(Number(process.argv[2] || 10000));
  } catch (err) {
    flushError = `${err.code}: ${err.message}`;
  }
  let stopError = null;
  try {
    await services.stop();  // ERR_SHUTDOWN_TIMEOUT when payloads were dropped: it stopped all the same
  } catch (err) {
    stopError = `${err.code}: ${err.message}`;
  }
  const st = services.stats();
  console.log(JSON.stringify({ door: 'node', send_rc: sendRc, flush_error: flushError, stop_error: stopError, events,
    payloads_sent: st.payloadsSent, payloads_dropped: st.payloadsDropped, running: services.isRunning(),
    addon: path.relative(process.cwd(), require.resolve('@datadog/serverless-node')) }));
})().catch((err) => { console.error(err); process.exit(1); });
