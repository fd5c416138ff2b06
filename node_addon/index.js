'use strict';
// @datadog/serverless-node: the JavaScript API of the design over the C library.
//
// This file owns the JS-shaped part only: option names, Promises, the call site in errors, and
// the process hooks. The addon (node_addon/*.cc) converts options into the C config and runs the
// blocking C calls off the JS thread; the C library checks and does everything else.
const binding = require('./binding');

// dds_flush has no default timeout of its own; this one matches dds_stop's default.
const DEFAULT_FLUSH_TIMEOUT_MS = 5000;

const CONFIG_KEYS = new Set(binding.configKeys);  // one per field of the C config
const JS_KEYS = new Set(['keepAlive', 'logger']);

// Instances started and not yet stopped, for the process hooks: nothing is left running when
// the process ends, and a running instance is never garbage-collected.
const live = new Set();

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${value.length > 64 ? `${value.slice(0, 61)}...` : value}'`;
  if (typeof value === 'object' || typeof value === 'function') return `a ${typeof value}`;
  return String(value);
}

function snapshot(config) {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return config;
  const copy = { ...config };
  for (const [key, value] of Object.entries(copy)) if (Array.isArray(value)) copy[key] = [...value];
  return copy;
}

function invalidConfig(message) {
  const err = new Error(`Invalid configuration: ${message}`);
  err.code = 'ERR_INVALID_CONFIG';
  return err;
}

function checkOptions(config) {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw invalidConfig(`the configuration must be an object, got ${describe(config)}`);
  }
  const squash = (key) => key.toLowerCase().replace(/[_-]/g, '');
  for (const key of Object.keys(config)) {
    if (CONFIG_KEYS.has(key) || JS_KEYS.has(key)) continue;
    const near = [...CONFIG_KEYS, ...JS_KEYS].find((known) => squash(known) === squash(key));
    throw invalidConfig(`unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}`);
  }
  if (config.keepAlive !== undefined && typeof config.keepAlive !== 'boolean') {
    throw invalidConfig(`keepAlive must be true or false, got ${describe(config.keepAlive)}`);
  }
  if (config.logger != null && typeof config.logger !== 'function') {
    throw invalidConfig(`logger must be a function (level, message) => void, got ${describe(config.logger)}`);
  }
}

// Errors point at the caller's line: the native call settles from a libuv callback, whose stack
// says nothing about who asked.
function callSite(method) {
  const holder = {};
  Error.captureStackTrace(holder, method);
  return holder.stack;
}

function rethrowAt(site) {
  return (err) => {
    if (err instanceof Error && typeof site === 'string') {
      const frames = site.indexOf('\n') >= 0 ? site.slice(site.indexOf('\n')) : '';
      err.stack = `${err.name}: ${err.message}${frames}`;
    }
    throw err;
  };
}

// A user callback that throws becomes an uncaught exception on the next tick, as if it were an
// event listener's; it never unwinds into the addon.
function guarded(fn) {
  return (...args) => {
    try {
      fn(...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  };
}

function warn(err) {
  if (err && err.code === 'ERR_NOT_RUNNING') return;
  process.emitWarning(`datadog-serverless: ${err && err.message}`, { code: err && err.code });
}

// ---- C log lines -----------------------------------------------------------------------------
// The C log sink is process-wide: while any running instance has a `logger`, every line goes to
// the logger of the most recently started one; otherwise the C library writes to stderr.
const loggers = new Map();

function dispatchLog(level, message) {
  const logger = [...loggers.values()].pop();
  if (logger) logger(level, message);
  else process.stderr.write(`${level} datadog-serverless: ${message}\n`);
}

function attachLogger(owner, logger) {
  if (!loggers.size) binding.setLogSink(dispatchLog);
  loggers.set(owner, guarded(logger));
}

function detachLogger(owner) {
  if (loggers.delete(owner) && !loggers.size) binding.setLogSink(null);
}

// ---- process hooks ---------------------------------------------------------------------------
let stopSync;  // (instance) => void, set in the class body (it needs the private native object)

// Always installed once an instance starts: 'exit' runs for a script that simply ends and for
// process.exit() (which skips the addon's environment cleanup hooks). Nothing async runs any
// more then, so the stop is synchronous (bounded by the C stop timeout, 5 s).
let exitHookInstalled = false;
function onExit() {
  if (!live.size) return;
  if (loggers.size) {
    loggers.clear();
    binding.setLogSink(null);  // JS cannot run any more: the last lines go to stderr
  }
  for (const instance of [...live]) {
    try {
      stopSync(instance);
    } catch (err) {
      process.stderr.write(`datadog-serverless: ${err.message}\n`);
    }
    live.delete(instance);
  }
}

function stopAll() {
  return Promise.all([...live].map((instance) => instance.stop().catch(warn)));
}

function onBeforeExit() {
  if (live.size) stopAll();
}

// Stops and flushes, then lets the signal have its usual outcome: when no other listener handles
// it, the listener is removed (the default action is back) and the signal raised again, so the
// process ends as Node ends on an unhandled SIGTERM/SIGINT (killed by the signal: exit status
// 128 + signal number in a shell). An application that listens to the signal itself decides.
function onSignal(signal) {
  stopAll().then(() => {
    if (process.listenerCount(signal) > 1) return;
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
    // Should the signal not end the process after all (a listener added meanwhile), end it with
    // the status a shell would show for it.
    setTimeout(() => process.exit(128 + (require('os').constants.signals[signal] || 0)), 1000).unref();
  });
}

let cleanupHookRegistered = false;

// ---- the API ---------------------------------------------------------------------------------
class DatadogServices {
  #native = new binding.Services();
  // start and stop run one after the other, in call order; flush waits for a start in progress.
  #lifecycle = Promise.resolve();

  static {
    stopSync = (instance) => instance.#native.stopSync(0);
  }

  #serial(task) {
    const done = this.#lifecycle.then(task);
    this.#lifecycle = done.catch(() => {});
    return done;
  }

  /**
   * Start the DogStatsD server and the trace agent. Resolves once both are bound and serving;
   * rejects with the start error (`code` ERR_INVALID_CONFIG, ERR_DOGSTATSD_START, ...).
   */
  start(config, statusCallback) {
    const site = callSite(this.start);
    // Read at the call, even when an earlier start or stop is still running.
    const options = config === undefined ? {} : snapshot(config);
    return this.#serial(() => this.#start(options, statusCallback)).catch(rethrowAt(site));
  }

  async #start(config, statusCallback) {
    checkOptions(config);
    if (statusCallback != null && typeof statusCallback !== 'function') {
      const err = new TypeError(`statusCallback must be a function, got ${describe(statusCallback)}`);
      err.code = 'ERR_INVALID_ARG_TYPE';
      throw err;
    }
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', onExit);
    }
    const wasLive = live.has(this);
    live.add(this);
    if (config.logger && !wasLive) attachLogger(this, config.logger);
    try {
      await this.#native.start(config, statusCallback ? guarded(statusCallback) : undefined, config.keepAlive === true);
    } catch (err) {
      if (!wasLive) {
        live.delete(this);
        detachLogger(this);
      }
      throw err;
    }
  }

  /**
   * Stop gracefully: stop accepting, drain the sockets, flush everything, wait for the intake
   * (at most `timeoutMs`, default 5000). Resolves once done; a second stop resolves at once.
   */
  stop(timeoutMs) {
    const site = callSite(this.stop);
    return this.#serial(async () => {
      try {
        await this.#native.stop(timeoutMs === undefined ? 0 : timeoutMs);
      } finally {
        if (!this.#native.isRunning()) {
          live.delete(this);
          detachLogger(this);
        }
      }
    }).catch(rethrowAt(site));
  }

  /**
   * Send everything now (open aggregation buckets included) and wait for the intake, at most
   * `timeoutMs` (default 5000). Call it before a serverless handler returns.
   */
  flush(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS) {
    const site = callSite(this.flush);
    return this.#lifecycle.then(() => this.#native.flush(timeoutMs)).catch(rethrowAt(site));
  }

  /** True between a successful start and the beginning of stop. */
  isRunning() {
    return this.#native.isRunning();
  }

  /** The bound ports (0 for a service not running): useful with port 0 ("any free port"). */
  get ports() {
    return this.#native.ports();
  }

  /** Counters since start (received, parsed, dropped, sent, ...). Works after stop too. */
  stats() {
    return this.#native.stats();
  }

  /**
   * Stop and flush every running instance on 'beforeExit', SIGTERM and SIGINT (and on 'exit',
   * synchronously, which is always covered). A signal keeps its usual outcome. Calling it again
   * adds nothing.
   */
  registerCleanupHook() {
    if (cleanupHookRegistered) return;
    cleanupHookRegistered = true;
    process.on('beforeExit', onBeforeExit);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
}

const services = new DatadogServices();

module.exports = { DatadogServices, services, version: binding.version };
