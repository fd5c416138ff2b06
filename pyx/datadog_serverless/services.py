"""Starting, flushing and stopping the services: ``ServerlessServices`` and ``ServicesHandle``.

Lifetime rules (the C library's, plus what the binding adds):

- ``start()`` returns once every enabled listener is bound: clients may send at once. Each
  service then reports ``ready`` (with its port) to ``on_status``, runtime problems come as
  ``error`` events, and ``stopped`` is the last event of an instance.
- ``on_status`` runs on the instance's own background thread (with the GIL, which the blocking
  calls release), and ingestion waits while it runs. An exception it raises is logged to the
  ``datadog_serverless`` logger and goes no further. It may call ``handle.stop()``: that starts the stop and returns at once, and a
  later ``stop()`` (or the atexit hook) waits for the end.
- Every running instance is referenced by this module until it is stopped, and an ``atexit``
  hook stops those still running, with a final flush: a script that starts the services and
  simply ends still delivers its data. atexit hooks run last-registered-first and this one is
  registered when ``datadog_serverless`` is first imported, so import it before clients whose
  own exit flush should still reach it (``ddtrace``), or flush them before the script ends.
- ``os.fork()``: an instance belongs to the process that started it. In the child its handle is
  inert (``is_running`` is False, ``flush()`` raises NotRunningError, ``stop()`` returns at once
  and sends nothing) and the child's exit does not touch it; the parent's instance goes on
  sending, so nothing is sent twice. A child that wants services starts its own.
"""

from __future__ import annotations

import atexit
import os
import sys
from _thread import allocate_lock as _Lock  # threading.Lock itself, without importing threading
from collections import namedtuple

from ._record import TYPE_CHECKING, record
from .config import ServicesConfig
from .errors import ALREADY_STARTED_MESSAGE, AlreadyStartedError

# The extension is imported by the first call that needs it (ServicesConfig.from_env(),
# ServerlessServices(...)), not with the package: loading it costs ~10 ms of CPU, which a function
# that never starts the services should not pay (its Cython init no longer imports `inspect`:
# cmake/cython_co_flags.cmake).
if TYPE_CHECKING:
    from typing import Any, Callable

    from . import _core

    StatusCallback = Callable[["ServiceStatus"], Any]

__all__ = ["ServerlessServices", "ServicesHandle", "ServiceStatus", "ServicesStats", "Ports"]

DEFAULT_TIMEOUT = 5.0

class Ports(namedtuple("_Ports", ["dogstatsd", "trace_agent"])):
    """The bound ports of an instance (0 for a disabled service or a Unix socket only). Unpacks as
    ``(dogstatsd, trace_agent)`` as it always has; ``logs_agent`` is an attribute beside them."""

    def __new__(cls, dogstatsd: int, trace_agent: int, logs_agent: int = 0) -> "Ports":
        self = super().__new__(cls, dogstatsd, trace_agent)
        self.logs_agent = logs_agent
        return self

    def __repr__(self) -> str:
        return f"Ports(dogstatsd={self.dogstatsd}, trace_agent={self.trace_agent}, logs_agent={self.logs_agent})"


@record(frozen=True)
class ServiceStatus:
    """One status event of an instance."""

    type: str
    """``"ready"`` (a service is bound and serving), ``"error"`` (a runtime problem the user
    should know of: the intake rejected the API key, a payload was dropped, ...) or
    ``"stopped"`` (the last event of an instance)."""
    service: str | None = None
    """``"dogstatsd"``, ``"trace-agent"`` or ``"logs-agent"`` (``ready``, and ``error`` about one service's
    payloads), or ``"process"`` for an event about the whole instance (``stopped``, no CA certificates)."""
    message: str | None = None
    """What happened, in words; may be None."""
    port: int | None = None
    """For ``ready``: the bound port (0 when the service listens on a Unix socket only)."""


@record(frozen=True)
class ServicesStats:
    """Counters since start (``dds_stats``): monotonic, except ``dsd_contexts``."""

    # DogStatsD ingest
    dsd_packets: int
    """Datagrams received (UDP, Unix socket, HTTP proxy bodies)."""
    dsd_packets_truncated: int
    """Datagrams longer than the buffer: dropped whole."""
    dsd_packets_dropped_queue: int
    """Datagrams dropped because the receive queue (``dogstatsd_queue_bytes``) was full."""
    dsd_packets_dropped_socket: int
    """Datagrams the kernel dropped because the socket's receive buffer was full (its own count)."""
    dsd_bytes: int
    """Payload bytes received (UDP, UDS and HTTP proxy bodies)."""
    dsd_metric_lines: int
    """Metric lines parsed."""
    dsd_events: int
    """Events parsed."""
    dsd_service_checks: int
    """Service checks parsed."""
    dsd_parse_errors: int
    """Lines rejected by the parser."""
    dsd_samples: int
    """Samples aggregated (a packed line counts each value)."""
    dsd_samples_dropped: int
    """NaN/Inf samples, timestamped samples of other types than gauge and count."""
    dsd_contexts_dropped: int
    """Samples dropped because the context limit was reached."""
    dsd_contexts: int
    """Live contexts right now (a gauge)."""
    dsd_events_dropped: int
    """Events and service checks over the pending bound."""
    # Intake (all payload kinds)
    payloads_sent: int
    """Payloads answered 2xx."""
    payloads_retried: int
    """Retry attempts made."""
    payloads_dropped: int
    """Payloads given up (400/403/413, retry queue overflow, stop deadline, too large)."""
    payload_bytes_sent: int
    """Body bytes of payloads answered 2xx."""
    series_sent: int
    """Metric series in payloads answered 2xx."""
    sketches_sent: int
    """Sketches in payloads answered 2xx."""
    dry_run_payloads: int
    """Payloads written to the dry-run output."""
    # Trace agent
    trace_requests: int
    """Trace requests answered 2xx."""
    trace_spans: int
    """Spans accepted."""
    trace_dropped: int
    """Traces dropped (decode error, invalid ids, bounds)."""
    trace_spans_dropped: int
    """Spans dropped in processing or encoding."""
    trace_spans_obfuscated: int
    """SQL, cassandra, redis, valkey and memcached spans an obfuscator rewrote."""
    trace_sql_non_parsable: int
    """SQL resources sent as ``Non-parsable SQL query``."""
    # Agent-computed trace stats (agent_stats_computation_enabled)
    trace_stats_spans: int
    """Eligible spans aggregated into trace stats."""
    trace_stats_spans_overflow: int
    """Of those, spans aggregated under the overflow key (the live-key bound was reached)."""
    trace_stats_spans_dropped: int
    """Eligible spans lost (tracer-metadata bound, out of memory)."""
    trace_stats_buckets: int
    """10 s stats buckets flushed."""
    trace_stats_keys: int
    """Aggregation keys (grouped stats) flushed."""
    # Logs agent
    logs_requests: int
    """POST /v1/input requests answered 200."""
    logs_entries: int
    """Log entries accepted into the queue."""
    logs_entries_dropped: int
    """Log entries dropped (over 1 MiB, queue full, out of memory)."""
    logs_bytes: int
    """Bytes of the log entries accepted."""
    # Send queue (payloads waiting for their first attempt, every destination together)
    send_queue_bytes: int
    """Bytes waiting right now (a gauge)."""
    send_queue_dropped_metrics: int
    """Series, sketches, service checks and events payloads dropped because the queue was full."""
    send_queue_dropped_traces: int
    """Trace and stats payloads dropped because the queue was full."""
    send_queue_dropped_logs: int
    """Logs batches dropped because the queue was full."""
    send_queue_dropped_proxy: int
    """Proxied tracer requests dropped because the queue was full."""
    # Azure Functions enhanced metrics
    enhanced_samples: int
    """Enhanced metric samples aggregated (CPU and instance)."""
    enhanced_cpu_unavailable: int
    """1 s CPU ticks with no readable cgroup counter (or garbage in it)."""


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


# ---- instances alive in this process ---------------------------------------------------------------

_live: set[ServicesHandle] = set()
_live_lock = _Lock()


def _remember(handle: ServicesHandle) -> None:
    with _live_lock:
        _live.add(handle)


def _forget(handle: ServicesHandle) -> None:
    with _live_lock:
        _live.discard(handle)


def _stop_all_at_exit() -> None:
    """atexit: stop every instance still running (drain, final flush, join). Without it the
    loop threads would ask for the GIL while the interpreter finalizes."""
    with _live_lock:
        handles = list(_live)
    for handle in handles:
        try:
            handle._stop_at_exit()
        except Exception:
            from .log import logger

            logger.warning("stopping the services at exit failed", exc_info=True)
    core = sys.modules.get(__package__ + "._core")
    if core is not None:  # never imported: no instance, no log sink
        core.shutdown()


def _forget_parent_instances() -> None:
    """os.fork() child: the parent's instances are inert here (the C library sees to it); drop
    the references so the child's exit leaves them alone, and replace the lock, which another
    thread of the parent may have held at the fork."""
    global _live_lock
    _live_lock = _Lock()
    _live.clear()


atexit.register(_stop_all_at_exit)
os.register_at_fork(after_in_child=_forget_parent_instances)


# ---- the API -----------------------------------------------------------------------------------------

class ServicesHandle:
    """A running instance, returned by :meth:`ServerlessServices.start`.

    Usable as a context manager (``with``, ``async with``): leaving the block stops it.
    """

    __slots__ = ("_core", "__weakref__")

    def __init__(self, core: _core.Instance) -> None:
        self._core = core

    @property
    def is_running(self) -> bool:
        """True from a successful start until a stop begins (False in a forked child)."""
        return self._core.running

    @property
    def ports(self) -> Ports:
        """The bound ports ``(dogstatsd, trace_agent)``: the real ones when 0 was asked."""
        return Ports(self._core.dogstatsd_port, self._core.trace_port, self._core.logs_port)

    def stats(self) -> ServicesStats:
        """The counters now (the final ones after :meth:`stop`). Never blocks."""
        return ServicesStats(**self._core.stats())

    def flush(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send everything now (open aggregation buckets, events, checks, traces) and wait until
        the intake answered every payload, ``timeout`` seconds at most. Call it before a
        function returns: the platform may freeze the process right after.

        Raises NotRunningError, ShutdownTimeoutError (what is pending stays queued and keeps
        being retried), or RuntimeServicesError when called from ``on_status``.
        """
        self._core.flush(_ms(timeout))

    def stop(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Stop accepting, read what the sockets hold, flush everything, wait for the intake
        and join the background thread, ``timeout`` seconds at most (0 = the C default, 5 s).

        From ``on_status`` it starts the stop and returns at once. Raises NotRunningError when
        already stopped, ShutdownTimeoutError when the intake did not answer in time (what was
        pending is dropped and counted; the instance is stopped all the same).
        """
        try:
            self._core.stop(_ms(timeout))
        finally:
            if self._core.released:
                _forget(self)

    def _stop_at_exit(self) -> None:
        if not self._core.released:
            self.stop()

    async def flush_async(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """:meth:`flush` on a worker thread: the event loop keeps running meanwhile."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    async def stop_async(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """:meth:`stop` on a worker thread: the event loop keeps running meanwhile."""
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.stop, timeout)

    def __enter__(self) -> ServicesHandle:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._core.released:
            self.stop()

    async def __aenter__(self) -> ServicesHandle:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if not self._core.released:
            await self.stop_async()

    def __repr__(self) -> str:
        state = "running" if self.is_running else ("stopped" if self._core.released else "stopping")
        dsd, trace = self.ports
        return f"<ServicesHandle {state} dogstatsd={dsd} trace_agent={trace}>"


class ServerlessServices:
    """The DogStatsD server and the trace agent of one configuration.

    ``start()`` may be called again once the previous instance stopped (a new instance each
    time); calling it while one still runs raises AlreadyStartedError.
    """

    def __init__(self, config: ServicesConfig | None = None) -> None:
        """Raises InvalidConfigError naming the field (``dds_config_validate``)."""
        self.config = config if config is not None else ServicesConfig()
        self.config.validate()
        self._handle: ServicesHandle | None = None
        self._lock = _Lock()

    def start(self, on_status: StatusCallback | None = None) -> ServicesHandle:
        """Bind the sockets and start the background thread; returns once every enabled
        service is ready to receive. ``on_status(ServiceStatus)`` runs on that thread: keep it
        short, ingestion waits while it runs.

        Raises InvalidConfigError, DogStatsDStartError, TraceAgentStartError (a port taken,
        ...), AlreadyStartedError, RuntimeServicesError.
        """
        callback = None
        if on_status is not None:
            def callback(kind: str, service: str | None, port: int, message: str | None) -> None:
                on_status(ServiceStatus(kind, service, message, port if kind == "ready" else None))

        from . import _core

        with self._lock:
            if self._handle is not None and self._handle.is_running:
                raise AlreadyStartedError(ALREADY_STARTED_MESSAGE)
            handle = ServicesHandle(_core.Instance.start(self.config._to_core(), callback))
            _remember(handle)
            self._handle = handle
        return handle

    async def start_async(self, on_status: StatusCallback | None = None) -> ServicesHandle:
        """:meth:`start` on a worker thread. ``on_status`` is called on the running event loop
        (in order); it may be a coroutine function."""
        import asyncio

        loop = asyncio.get_running_loop()
        callback = None
        if on_status is not None:
            def run(status: ServiceStatus) -> None:
                result = on_status(status)
                if asyncio.iscoroutine(result):
                    loop.create_task(result)

            def callback(status: ServiceStatus) -> None:
                try:
                    loop.call_soon_threadsafe(run, status)
                except RuntimeError:
                    if not loop.is_closed():
                        raise  # a closed loop cannot receive the event: drop it

        return await loop.run_in_executor(None, self.start, callback)

    def __repr__(self) -> str:
        return f"<ServerlessServices {self._handle!r}>"
