# cython: language_level=3, embedsignature=True
"""The C library, wrapped and nothing more: value conversion and the lifetime of one
``dds_services`` per :class:`Instance`. The rules followed here:

- every call that can block (start, flush, stop, free, the standalone program) runs without the
  GIL, so the loop thread can take it to deliver a callback while the caller waits;
- callbacks from C take the GIL only to run Python, catch ``BaseException`` and never let it
  reach C, and stay out of Python once the interpreter is shutting down;
- what a callback receives from C is valid during the call only: it is copied into Python
  objects before the callback returns.

The public API (``ServerlessServices``, ``ServicesConfig``, ...) lives in the pure-Python modules.
"""

from cpython.ref cimport PyObject, Py_DECREF, Py_INCREF
from libc.stdint cimport int32_t, uint16_t, uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport strlen

from datadog_serverless cimport cdds as c

import os
import sys
import warnings

from datadog_serverless import errors as _errors
from datadog_serverless import log as _log

cdef extern from "<stdbool.h>":
    ctypedef bint c_bool "bool"

cdef extern from *:
    """
    #include <pthread.h>
    #include <stdatomic.h>
    #include <stdbool.h>

    /* What the status callback of one instance needs, apart from the Python object that owns
     * the instance: the loop thread never touches an object that may be being deallocated.
     * Freed after dds_free, when no callback of the instance can run any more. */
    typedef struct dds_py_ctx {
        PyObject *on_status;   /* owned reference, or NULL */
        pthread_t loop;        /* the instance's loop thread: status callbacks run only there */
        atomic_bool loop_known;
        atomic_int busy;       /* status callbacks running right now */
    } dds_py_ctx;

    /* Set by the atexit hook once every instance is stopped: from then on the interpreter is
     * finalizing, and a thread that asks for the GIL may be killed mid-callback. */
    static atomic_bool dds_py_finalizing;

    static void dds_py_note_loop(dds_py_ctx *c) {
        if (!atomic_load(&c->loop_known)) {
            c->loop = pthread_self();
            atomic_store(&c->loop_known, true);
        }
    }
    static int dds_py_on_loop(const dds_py_ctx *c) {
        return c && atomic_load(&c->loop_known) && pthread_equal(c->loop, pthread_self());
    }
    static void dds_py_busy_add(dds_py_ctx *c, int d) { atomic_fetch_add(&c->busy, d); }
    static int dds_py_busy(dds_py_ctx *c) { return atomic_load(&c->busy); }
    static void dds_py_set_finalizing(int v) { atomic_store(&dds_py_finalizing, v != 0); }
    static int dds_py_is_finalizing(void) { return atomic_load(&dds_py_finalizing); }
    """
    ctypedef struct dds_py_ctx:
        PyObject *on_status
    void dds_py_note_loop(dds_py_ctx *ctx) nogil
    bint dds_py_on_loop(const dds_py_ctx *ctx) nogil
    void dds_py_busy_add(dds_py_ctx *ctx, int d) nogil
    int dds_py_busy(dds_py_ctx *ctx) nogil
    void dds_py_set_finalizing(int v) nogil
    bint dds_py_is_finalizing() nogil


# ---- errors --------------------------------------------------------------------------------------

cdef object _error(const c.dds_error *err):
    """The exception for a filled dds_error: class by code, message word for word."""
    return _errors.error_from_code(c.dds_errcode_name(err.code).decode("ascii"),
                                   (<const char *>err.message).decode("utf-8", "replace"))


cdef object _not_running():
    """NotRunningError with the C library's own message for that code."""
    cdef c.dds_error err
    c.dds_flush(NULL, 0, &err)
    return _error(&err)


def version():
    """The C library's version, ``"MAJOR.MINOR.PATCH"``."""
    return c.dds_version().decode("ascii")


# ---- logging -------------------------------------------------------------------------------------

cdef object _logger = None  # _log.logger, once a line has to reach logging
cdef tuple _levels = _log.LEVELS


cdef object _get_logger():
    global _logger
    if _logger is None:
        _logger = _log.logger
    return _logger


cdef void _emit_log(int level, const char *line) noexcept:
    try:
        py_level = _levels[level] if 0 <= level < len(_levels) else _levels[-1]
        # Until something imports `logging`, nothing can have configured it: our logger's level
        # is the root's default, WARNING, so a line below it would be dropped there anyway.
        # Dropping it here spares a function's cold start the import of `logging`.
        if _logger is None and py_level < _log.WARNING and "logging" not in sys.modules:
            return
        if _get_logger().isEnabledFor(py_level):
            _logger.log(py_level, line[:strlen(line)].decode("utf-8", "replace"))
    except BaseException:
        pass  # a log line must never unwind into C; logging reports handler errors itself


cdef void _log_sink(c.dds_log_level level, const char *line, void *user) noexcept nogil:
    # The finalizing check comes before the GIL: asking for it during finalization kills the
    # calling thread, and this one may be an instance's loop thread.
    if dds_py_is_finalizing():
        return
    with gil:
        _emit_log(<int>level, line)


# Process-wide (dds_set_log_fn): installed once, for every instance of this process.
c.dds_set_log_fn(_log_sink, NULL)


def shutdown():
    """Called by the atexit hook after it stopped every instance: callbacks stay out of Python
    from now on, and log lines go to the C library's default sink (stderr)."""
    dds_py_set_finalizing(1)
    c.dds_set_log_fn(NULL, NULL)


# ---- configuration -------------------------------------------------------------------------------

cdef enum Kind:
    K_STR
    K_BOOL
    K_INT
    K_I32
    K_U32
    K_LEVEL

cdef c.dds_config _probe


cdef Py_ssize_t _at(const void *field) noexcept:
    """Offset of a dds_config field: one table below drives both conversions."""
    return <const char *>field - <const char *>&_probe


# Every field of dds_config, in the header's order: (name, kind, offset).
FIELDS = (
    ("api_key", K_STR, _at(&_probe.api_key)),
    ("site", K_STR, _at(&_probe.site)),
    ("dd_url", K_STR, _at(&_probe.dd_url)),
    ("https_proxy", K_STR, _at(&_probe.https_proxy)),
    ("tls_ca_path", K_STR, _at(&_probe.tls_ca_path)),
    ("tls_verify", K_BOOL, _at(&_probe.tls_verify)),
    ("dry_run", K_BOOL, _at(&_probe.dry_run)),
    ("dry_run_fd", K_INT, _at(&_probe.dry_run_fd)),
    ("log_level", K_LEVEL, _at(&_probe.log_level)),
    ("tags", K_STR, _at(&_probe.tags)),
    ("env", K_STR, _at(&_probe.env)),
    ("service", K_STR, _at(&_probe.service)),
    ("version", K_STR, _at(&_probe.version)),
    ("use_dogstatsd", K_BOOL, _at(&_probe.use_dogstatsd)),
    ("dogstatsd_port", K_I32, _at(&_probe.dogstatsd_port)),
    ("dogstatsd_socket", K_STR, _at(&_probe.dogstatsd_socket)),
    ("dogstatsd_non_local_traffic", K_BOOL, _at(&_probe.dogstatsd_non_local_traffic)),
    ("dogstatsd_buffer_size", K_U32, _at(&_probe.dogstatsd_buffer_size)),
    ("dogstatsd_so_rcvbuf", K_U32, _at(&_probe.dogstatsd_so_rcvbuf)),
    ("dogstatsd_queue_bytes", K_U32, _at(&_probe.dogstatsd_queue_bytes)),
    ("metric_namespace", K_STR, _at(&_probe.metric_namespace)),
    ("context_limit", K_U32, _at(&_probe.context_limit)),
    ("counter_expiry_s", K_U32, _at(&_probe.counter_expiry_s)),
    ("histogram_aggregates", K_STR, _at(&_probe.histogram_aggregates)),
    ("histogram_percentiles", K_STR, _at(&_probe.histogram_percentiles)),
    ("client_telemetry", K_BOOL, _at(&_probe.client_telemetry)),
    ("flush_interval_ms", K_U32, _at(&_probe.flush_interval_ms)),
    ("use_trace_agent", K_BOOL, _at(&_probe.use_trace_agent)),
    ("apm_receiver_port", K_I32, _at(&_probe.apm_receiver_port)),
    ("apm_receiver_socket", K_STR, _at(&_probe.apm_receiver_socket)),
    ("apm_non_local_traffic", K_BOOL, _at(&_probe.apm_non_local_traffic)),
    ("apm_dd_url", K_STR, _at(&_probe.apm_dd_url)),
    ("apm_profiling_dd_url", K_STR, _at(&_probe.apm_profiling_dd_url)),
    ("apm_telemetry_dd_url", K_STR, _at(&_probe.apm_telemetry_dd_url)),
    ("evp_proxy_dd_url", K_STR, _at(&_probe.evp_proxy_dd_url)),
    ("apm_max_request_bytes", K_U32, _at(&_probe.apm_max_request_bytes)),
    ("apm_remove_query_string", K_BOOL, _at(&_probe.apm_remove_query_string)),
    ("apm_obfuscate_credit_cards", K_BOOL, _at(&_probe.apm_obfuscate_credit_cards)),
    ("apm_remove_paths_with_digits", K_BOOL, _at(&_probe.apm_remove_paths_with_digits)),
    ("apm_obfuscate_redis", K_BOOL, _at(&_probe.apm_obfuscate_redis)),
    ("apm_redis_remove_all_args", K_BOOL, _at(&_probe.apm_redis_remove_all_args)),
    ("apm_obfuscate_valkey", K_BOOL, _at(&_probe.apm_obfuscate_valkey)),
    ("apm_valkey_remove_all_args", K_BOOL, _at(&_probe.apm_valkey_remove_all_args)),
    ("apm_obfuscate_memcached", K_BOOL, _at(&_probe.apm_obfuscate_memcached)),
    ("apm_memcached_keep_command", K_BOOL, _at(&_probe.apm_memcached_keep_command)),
    ("apm_remove_stack_traces", K_BOOL, _at(&_probe.apm_remove_stack_traces)),
    ("apm_obfuscation_cache_enabled", K_BOOL, _at(&_probe.apm_obfuscation_cache_enabled)),
    ("apm_obfuscation_cache_max_size", K_U32, _at(&_probe.apm_obfuscation_cache_max_size)),
    ("apm_replace_tags", K_STR, _at(&_probe.apm_replace_tags)),
    ("agent_stats_computation_enabled", K_BOOL, _at(&_probe.agent_stats_computation_enabled)),
    ("logs_enabled", K_BOOL, _at(&_probe.logs_enabled)),
    ("logs_port", K_I32, _at(&_probe.logs_port)),
    ("logs_non_local_traffic", K_BOOL, _at(&_probe.logs_non_local_traffic)),
    ("logs_dd_url", K_STR, _at(&_probe.logs_dd_url)),
    ("logs_use_compression", K_BOOL, _at(&_probe.logs_use_compression)),
    ("logs_compression_level", K_I32, _at(&_probe.logs_compression_level)),
    ("logs_max_queued_bytes", K_U32, _at(&_probe.logs_max_queued_bytes)),
    ("logs_opw_enabled", K_BOOL, _at(&_probe.logs_opw_enabled)),
    ("logs_opw_url", K_STR, _at(&_probe.logs_opw_url)),
    ("logs_additional_endpoints", K_STR, _at(&_probe.logs_additional_endpoints)),
    ("enhanced_metrics_enabled", K_BOOL, _at(&_probe.enhanced_metrics_enabled)),
    ("request_timeout_ms", K_U32, _at(&_probe.request_timeout_ms)),
    ("retry_queue_max_bytes", K_U32, _at(&_probe.retry_queue_max_bytes)),
    ("send_queue_max_bytes", K_U32, _at(&_probe.send_queue_max_bytes)),
)
cdef dict _field_index = {name: (kind, offset) for name, kind, offset in FIELDS}

# dds_log_level by its C name ("trace" ... "off"), from the library itself.
cdef dict _level_by_name = {
    c.dds_log_level_name(<c.dds_log_level>i).decode("ascii"): i
    for i in range(<int>c.DDS_LOG_TRACE, <int>c.DDS_LOG_OFF + 1)
}


cdef object _conversion_error(str name, str what, object value):
    return _errors.InvalidConfigError(f"Invalid configuration: {name} must be {what}, got {value!r}")


cdef class Config:
    """One ``dds_config``, set up by ``dds_config_init``, with the bytes its strings point to.

    ``set(name, value)`` converts one Python value (``None`` keeps the field as it is); the
    ranges and rules are checked by :meth:`validate` (``dds_config_validate``), not here.
    """

    cdef c.dds_config c
    cdef list _keep  # the bytes the string fields point into, alive as long as this object

    def __cinit__(self):
        c.dds_config_init(&self.c)
        self._keep = []

    def set(self, str name, value):
        if value is None:
            return
        kind, offset = _field_index[name]
        cdef char *at = <char *>&self.c + <Py_ssize_t>offset
        cdef bytes data
        if kind == K_STR:
            if isinstance(value, str):
                data = (<str>value).encode("utf-8", "surrogateescape")
            elif isinstance(value, os.PathLike):
                data = os.fsencode(value)
            else:
                raise _conversion_error(name, "a string", value)
            if b"\0" in data:
                raise _conversion_error(name, "a string without NUL characters", value)
            self._keep.append(data)
            (<const char **>at)[0] = <const char *>data
        elif kind == K_BOOL:
            if not isinstance(value, bool):
                raise _conversion_error(name, "True or False", value)
            (<c_bool *>at)[0] = <bint>value
        elif kind == K_LEVEL:
            if isinstance(value, str):
                level = _level_by_name.get((<str>value).lower())
                if level is None:
                    raise _conversion_error(name, "one of " + "|".join(_level_by_name), value)
                value = level
            elif isinstance(value, bool) or not isinstance(value, int):
                raise _conversion_error(name, "a level name or a dds_log_level number", value)
            try:
                (<c.dds_log_level *>at)[0] = <c.dds_log_level><int>value
            except OverflowError:
                raise _conversion_error(name, "a level name or a dds_log_level number", value) from None
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _conversion_error(name, "an integer", value)
            try:
                if kind == K_INT:
                    (<int *>at)[0] = <int>value
                elif kind == K_I32:
                    (<int32_t *>at)[0] = <int32_t>value
                else:
                    (<uint32_t *>at)[0] = <uint32_t>value
            except OverflowError:
                width = "a 32-bit unsigned integer" if kind == K_U32 else "a 32-bit integer"
                raise _conversion_error(name, width, value) from None

    def as_dict(self):
        """Every field as a Python value (strings copied; NULL -> None; log_level by name)."""
        cdef const char *at
        cdef const char *s
        out = {}
        for name, kind, offset in FIELDS:
            at = <const char *>&self.c + <Py_ssize_t>offset
            if kind == K_STR:
                s = (<const char **>at)[0]
                out[name] = None if s == NULL else s[:strlen(s)].decode("utf-8", "surrogateescape")
            elif kind == K_BOOL:
                out[name] = bool((<const c_bool *>at)[0])
            elif kind == K_LEVEL:
                level = <int>(<const c.dds_log_level *>at)[0]
                out[name] = (c.dds_log_level_name(<c.dds_log_level>level).decode("ascii")
                             if c.DDS_LOG_TRACE <= level <= c.DDS_LOG_OFF else level)
            elif kind == K_INT:
                out[name] = (<const int *>at)[0]
            elif kind == K_I32:
                out[name] = (<const int32_t *>at)[0]
            else:
                out[name] = (<const uint32_t *>at)[0]
        return out

    def load_env(self):
        """``dds_config_from_env``: string fields then point into the process environment, so
        read them (``as_dict``) before the environment changes."""
        cdef c.dds_error err
        if c.dds_config_from_env(&self.c, &err) != 0:
            raise _error(&err)

    def validate(self):
        """``dds_config_validate``: raises InvalidConfigError naming the field."""
        cdef c.dds_error err
        if c.dds_config_validate(&self.c, &err) != 0:
            raise _error(&err)


# ---- status callback -----------------------------------------------------------------------------

cdef tuple _status_types = ("ready", "error", "stopped")


cdef void _deliver_status(object fn, const c.dds_status *st) noexcept:
    cdef const char *service
    try:
        service = c.dds_service_name(st.service)
        fn(_status_types[<int>st.type] if 0 <= <int>st.type < 3 else str(<int>st.type),
           None if service == NULL else service[:strlen(service)].decode("ascii"),
           st.port,
           None if st.message == NULL else st.message[:strlen(st.message)].decode("utf-8", "replace"))
    except BaseException:
        try:
            logger = _get_logger()
            logger.error("the on_status callback raised an exception", exc_info=True)
        except BaseException:
            pass


cdef void _on_status(const c.dds_status *st, void *user) noexcept nogil:
    cdef dds_py_ctx *ctx = <dds_py_ctx *>user
    dds_py_note_loop(ctx)
    if ctx.on_status == NULL or dds_py_is_finalizing():
        return
    dds_py_busy_add(ctx, 1)
    with gil:
        _deliver_status(<object>ctx.on_status, st)
    dds_py_busy_add(ctx, -1)


cdef void _ctx_free(dds_py_ctx *ctx) noexcept:
    if ctx == NULL:
        return
    if dds_py_busy(ctx) != 0:
        return  # a callback never returned (the C side leaked its instance too): keep it valid
    if ctx.on_status != NULL:
        Py_DECREF(<object>ctx.on_status)
    free(ctx)


# ---- one instance --------------------------------------------------------------------------------

cdef class Instance:
    """Owns one ``dds_services`` (from :meth:`start` until released) and its callback context.

    Several threads may call :meth:`flush` and :meth:`stop` at once: ``calls`` counts the C calls
    in flight without the GIL, and ``dds_free`` waits for the last one to return.
    """

    cdef c.dds_services *svc      # running (or stopping): NULL once stopped through the binding
    cdef c.dds_services *to_free  # stopped, freed when the last call in flight returns
    cdef dds_py_ctx *ctx
    cdef int calls
    cdef readonly int dogstatsd_port
    cdef readonly int trace_port
    cdef readonly int logs_port
    cdef dict _final_stats

    def __cinit__(self):
        self.svc = NULL
        self.to_free = NULL
        self.ctx = NULL
        self.calls = 0

    @staticmethod
    def start(Config config not None, on_status):
        """``dds_start``: returns once every enabled listener is bound (``on_status`` receives
        ``(type, service, port, message)`` on the instance's loop thread)."""
        cdef Instance self = Instance.__new__(Instance)
        cdef c.dds_error err
        cdef c.dds_services *svc = NULL
        cdef uint16_t dsd_port = 0, trace_port = 0
        cdef int rc
        cdef dds_py_ctx *ctx = <dds_py_ctx *>calloc(1, sizeof(dds_py_ctx))
        if ctx == NULL:
            raise MemoryError()
        if on_status is not None:
            Py_INCREF(on_status)
            ctx.on_status = <PyObject *>on_status
        with nogil:
            rc = c.dds_start(&config.c, _on_status, ctx, &svc, &err)
        if rc != 0:
            _ctx_free(ctx)  # a failed start never calls the callback
            raise _error(&err)
        self.svc = svc
        self.ctx = ctx
        c.dds_ports(svc, &dsd_port, &trace_port)
        self.dogstatsd_port = dsd_port
        self.trace_port = trace_port
        self.logs_port = c.dds_logs_port(svc)
        return self

    @property
    def running(self):
        """``dds_is_running``: False once a stop began, and in a forked child."""
        return self.svc != NULL and c.dds_is_running(self.svc)

    @property
    def released(self):
        """True once stopped through the binding (the C instance is gone or about to be)."""
        return self.svc == NULL

    def flush(self, uint32_t timeout_ms):
        """``dds_flush``: blocks (without the GIL) until the intake answered or the timeout."""
        cdef c.dds_services *svc = self.svc
        cdef c.dds_error err
        cdef int rc
        if svc == NULL:
            raise _not_running()
        self.calls += 1
        with nogil:
            rc = c.dds_flush(svc, timeout_ms, &err)
        self.calls -= 1
        self._free_when_idle()
        if rc != 0:
            raise _error(&err)

    def stop(self, uint32_t timeout_ms):
        """``dds_stop`` then ``dds_free``. Returns False when called from this instance's own
        status callback: the stop is started, and a later ``stop()`` (or the atexit hook, or
        deallocation) joins the loop thread and frees the instance."""
        cdef c.dds_services *svc = self.svc
        cdef c.dds_error err
        cdef int rc
        if svc == NULL:
            raise _not_running()
        self.calls += 1
        with nogil:
            rc = c.dds_stop(svc, timeout_ms, &err)
        self.calls -= 1
        if dds_py_on_loop(self.ctx):
            if rc != 0:
                raise _error(&err)
            return False
        if self.svc == svc:  # the first stop to return releases; a concurrent one finds NULL
            self._final_stats = _stats_of(svc)
            self.svc = NULL
            self.to_free = svc
        self._free_when_idle()
        if rc != 0:
            raise _error(&err)
        return True

    def stats(self):
        """``dds_stats_get`` as a dict (the final counters once stopped)."""
        if self.svc != NULL:
            return _stats_of(self.svc)
        return dict(self._final_stats or _stats_of(NULL))

    cdef void _free_when_idle(self) noexcept:
        cdef c.dds_services *svc = self.to_free
        if svc == NULL or self.calls != 0 or dds_py_on_loop(self.ctx):
            return
        self.to_free = NULL
        with nogil:
            c.dds_free(svc)
        _ctx_free(self.ctx)
        self.ctx = NULL

    def __dealloc__(self):
        cdef c.dds_services *svc = self.svc if self.svc != NULL else self.to_free
        if svc == NULL:
            _ctx_free(self.ctx)
            return
        if dds_py_on_loop(self.ctx):
            return  # dropped inside its own status callback: the loop cannot join itself; leak
        if c.dds_is_running(svc):
            try:
                warnings.warn("datadog_serverless: services deallocated while running: stopped and freed",
                              ResourceWarning, stacklevel=2)
            except BaseException:
                pass
        self.svc = NULL
        self.to_free = NULL
        with nogil:
            c.dds_free(svc)  # stops (final flush) and joins first when still running
        _ctx_free(self.ctx)
        self.ctx = NULL


cdef dict _stats_of(const c.dds_services *svc):
    cdef c.dds_stats st
    c.dds_stats_get(svc, &st)
    out = <dict>st
    out.pop("reserved", None)  # none left today; a future reserved tail is not a counter
    return out


# ---- the standalone program ----------------------------------------------------------------------

def compat_main(argv):
    """``dds_compat_main``: the whole ``datadog-serverless-compat`` program, run in this process
    until SIGINT or SIGTERM; returns its exit code. Call it from the main thread."""
    cdef list args = [os.fsencode(a) for a in argv]
    cdef int argc = len(args)
    cdef char **cargv = <char **>calloc(argc + 1, sizeof(char *))
    cdef int i, rc
    if cargv == NULL:
        raise MemoryError()
    for i in range(argc):
        cargv[i] = <char *>(<bytes>args[i])
    # The program writes its own log lines to stderr, exactly like the C binary does.
    c.dds_set_log_fn(NULL, NULL)
    try:
        with nogil:
            rc = c.dds_compat_main(argc, cargv)
    finally:
        c.dds_set_log_fn(_log_sink, NULL)
        free(cargv)
    return rc
