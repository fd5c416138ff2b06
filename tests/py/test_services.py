"""datadog_serverless.services: lifecycle of ServerlessServices / ServicesHandle against the fake
intake: start, flush, stop, double start, stop when not running, start after stop, two instances,
stop from the status callback, status events in order, stats, 200 cycles with stable RSS."""
from __future__ import annotations

import gc
import socket
import threading
import time

import pytest

from datadog_serverless import (
    AlreadyStartedError,
    DogStatsDStartError,
    NotRunningError,
    RuntimeServicesError,
    ServerlessServices,
    ServicesHandle,
    ServicesStats,
    ShutdownTimeoutError,
    TraceAgentStartError,
    _core,
)
from tests.py.services_util import API_KEY, local_config, metric_names, rss_bytes, send_udp


def test_start_flush_stop_delivers_to_the_intake(fake_intake):
    handle = ServerlessServices(local_config(fake_intake)).start()
    assert isinstance(handle, ServicesHandle) and handle.is_running
    dsd, trace = handle.ports
    assert dsd > 0 and trace > 0 and dsd != 8125 and trace != 8126
    send_udp(dsd, "py.flushed:1|c|#k:v")
    deadline = time.monotonic() + 5
    while handle.stats().dsd_metric_lines < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    handle.flush(timeout=5)
    assert "py.flushed" in metric_names(fake_intake)  # flush returns after the intake answered
    assert fake_intake.api_keys() == {API_KEY}
    handle.stop()
    assert not handle.is_running
    assert "stopped" in repr(handle)


def test_stop_drains_the_socket_and_sends_what_it_held(fake_intake):
    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False)).start()
    send_udp(handle.ports.dogstatsd, *[f"py.drain.m{i}:1|c" for i in range(50)])
    handle.stop()  # no sleep, no flush: what the kernel held when stop was called is sent
    assert {f"py.drain.m{i}" for i in range(50)} <= metric_names(fake_intake)


def test_double_start_raises_already_started_and_start_after_stop_works(fake_intake):
    services = ServerlessServices(local_config(fake_intake))
    first = services.start()
    with pytest.raises(AlreadyStartedError) as exc:
        services.start()
    assert str(exc.value) == "Services already started" and exc.value.code == "ERR_ALREADY_STARTED"
    assert first.is_running  # the failed start left the running one alone
    first.stop()
    second = services.start()
    assert second is not first and second.is_running and not first.is_running
    send_udp(second.ports.dogstatsd, "py.second:1|c")
    second.stop()
    assert "py.second" in metric_names(fake_intake)


def test_flush_includes_datagrams_sent_before_it(fake_intake):
    # A handler sends its metrics, then flushes before returning: the flush should carry them.
    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False, log_level="off")).start()
    late = 0
    for i in range(100):
        send_udp(handle.ports.dogstatsd, f"py.race.m{i}:1|c")
        handle.flush()
        if handle.stats().dsd_metric_lines != i + 1:
            late += 1
            deadline = time.monotonic() + 2
            while handle.stats().dsd_metric_lines < i + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
    handle.stop()
    assert late == 0, f"{late} of 100 flushes ran before the datagram sent just before them was read"


def test_stop_and_flush_when_not_running_raise_not_running():
    handle = ServerlessServices(local_config(log_level="off")).start()
    handle.stop()
    with pytest.raises(NotRunningError, match="^Services not running$"):
        handle.stop()
    with pytest.raises(NotRunningError):
        handle.flush()
    assert handle.stats().dsd_packets == 0  # the final counters stay readable


def test_two_instances_on_port_zero(fake_intake):
    a = ServerlessServices(local_config(fake_intake)).start()
    b = ServerlessServices(local_config(fake_intake)).start()
    try:
        assert len({a.ports.dogstatsd, b.ports.dogstatsd, a.ports.trace_agent, b.ports.trace_agent}) == 4
        send_udp(a.ports.dogstatsd, "py.two.a:1|c")
        send_udp(b.ports.dogstatsd, "py.two.b:1|c")
    finally:
        a.stop()
        b.stop()
    assert {"py.two.a", "py.two.b"} <= metric_names(fake_intake)
    assert a.stats().dsd_metric_lines == 1 and b.stats().dsd_metric_lines == 1


def test_status_events_in_order():
    events = []
    handle = ServerlessServices(local_config(log_level="off")).start(on_status=events.append)
    ports = handle.ports
    handle.stop()
    assert [(e.type, e.service, e.port) for e in events] == [
        ("ready", "trace-agent", ports.trace_agent),
        ("ready", "dogstatsd", ports.dogstatsd),
        ("stopped", "process", None),
    ]
    assert events[-1].message == "stopped"


def test_status_callback_runs_on_the_loop_thread_with_the_gil():
    seen = []
    handle = ServerlessServices(local_config(log_level="off", use_trace_agent=False)).start(
        on_status=lambda st: seen.append((st.type, threading.get_ident())))
    handle.stop()
    assert [t for t, _ in seen] == ["ready", "stopped"]
    assert {ident for _, ident in seen} != {threading.get_ident()}


def test_error_event_when_the_intake_rejects_the_key(fake_intake):
    fake_intake.fail(status=403, count=-1)
    events = []
    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False, log_level="off")).start(
        on_status=events.append)
    send_udp(handle.ports.dogstatsd, "py.rejected:1|c")
    time.sleep(0.05)
    handle.flush()
    handle.stop()
    errors = [e for e in events if e.type == "error"]
    assert errors and "rejected the API key (HTTP 403)" in errors[0].message
    assert errors[0].service == "dogstatsd" and errors[0].port is None  # the service whose payload it was
    assert events[-1].service == "process"  # stopping concerns the whole instance
    assert events[-1].type == "stopped"
    assert handle.stats().payloads_dropped >= 1
    assert all(API_KEY not in (e.message or "") for e in events)


def test_stop_from_the_status_callback():
    holder: dict[str, ServicesHandle] = {}
    known = threading.Event()
    stopped = threading.Event()
    returned = []

    def on_status(st):
        if st.type == "ready" and st.service == "dogstatsd":
            known.wait(5)  # the handle exists once start() returned
            t0 = time.monotonic()
            returned.append(holder["h"].stop())  # starts the stop, returns at once
            returned.append(time.monotonic() - t0)
        elif st.type == "stopped":
            stopped.set()

    handle = ServerlessServices(local_config(log_level="off")).start(on_status=on_status)
    holder["h"] = handle
    known.set()
    assert stopped.wait(5)
    assert returned[0] is None and returned[1] < 1.0
    assert not handle.is_running and "stopping" in repr(handle)
    handle.stop()  # joins the loop thread and frees the instance
    assert "stopped" in repr(handle)
    with pytest.raises(NotRunningError):
        handle.stop()


def test_stop_from_callback_on_an_error_event(fake_intake):
    fake_intake.fail(status=403, count=-1)
    stopped = threading.Event()
    holder: dict[str, ServicesHandle] = {}

    def on_status(st):
        if st.type == "error":
            holder["h"].stop()
        elif st.type == "stopped":
            stopped.set()

    services = ServerlessServices(local_config(fake_intake, use_trace_agent=False, log_level="off"))
    holder["h"] = handle = services.start(on_status=on_status)
    send_udp(handle.ports.dogstatsd, "py.stop.on.error:1|c")
    time.sleep(0.05)
    try:
        handle.flush(timeout=5)
    except NotRunningError:
        pass  # the callback's stop may win the race with the flush's completion
    assert stopped.wait(5) and not handle.is_running
    # The stop began from the callback: a new instance may start before anyone joined the old.
    again = services.start()
    again.stop()
    handle.stop()


def test_flush_from_the_status_callback_is_a_runtime_error():
    outcome = []
    done = threading.Event()

    def on_status(st):
        if st.type == "ready":
            try:
                holder["h"].flush()
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                outcome.append(exc)
            done.set()

    holder: dict[str, ServicesHandle] = {}
    known = threading.Event()
    services = ServerlessServices(local_config(log_level="off", use_trace_agent=False))

    def gated(st):
        known.wait(5)
        on_status(st)

    holder["h"] = services.start(on_status=gated)
    known.set()
    assert done.wait(5)
    holder["h"].stop()
    assert isinstance(outcome[0], RuntimeServicesError)
    assert "status callback" in str(outcome[0])


def test_callback_exception_is_logged_and_contained(caplog):
    def boom(st):
        raise KeyError("from the callback")

    with caplog.at_level("ERROR", logger="datadog_serverless"):
        handle = ServerlessServices(local_config(log_level="off", use_trace_agent=False)).start(on_status=boom)
        send_udp(handle.ports.dogstatsd, "py.after.boom:1|c")
        time.sleep(0.05)
        assert handle.is_running and handle.stats().dsd_metric_lines == 1
        handle.stop()
    raised = [r for r in caplog.records if "on_status callback raised" in r.getMessage()]
    assert len(raised) == 2 and raised[0].exc_info[0] is KeyError  # ready, stopped


def test_taken_port_fails_without_callback():
    events = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(DogStatsDStartError) as exc:
            ServerlessServices(local_config(dogstatsd_port=port, log_level="off")).start(on_status=events.append)
    assert str(exc.value) == f"Failed to start DogStatsD: cannot bind UDP 127.0.0.1:{port}: Address already in use"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(TraceAgentStartError, match="^Failed to start trace agent: "):
            ServerlessServices(local_config(apm_receiver_port=port, log_level="off")).start(on_status=events.append)
    assert events == []


def test_flush_timeout(fake_intake):
    fake_intake.fail(delay_ms=1500, count=-1)
    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False, log_level="off")).start()
    send_udp(handle.ports.dogstatsd, "py.slow:1|c")
    time.sleep(0.05)
    t0 = time.monotonic()
    with pytest.raises(ShutdownTimeoutError) as exc:
        handle.flush(timeout=0.2)
    assert time.monotonic() - t0 < 1.2
    assert str(exc.value).startswith("Flush timeout exceeded (200 ms)")
    assert isinstance(exc.value, TimeoutError)
    handle.stop()  # the slow answer still arrives within the default 5 s
    assert "py.slow" in metric_names(fake_intake)


def test_context_manager_stops(fake_intake):
    with ServerlessServices(local_config(fake_intake, use_trace_agent=False)).start() as handle:
        send_udp(handle.ports.dogstatsd, "py.with:1|c")
    assert not handle.is_running
    assert "py.with" in metric_names(fake_intake)
    with ServerlessServices(local_config(log_level="off")).start() as handle:
        handle.stop()  # stopping inside the block is fine: leaving it does not raise


def test_stats_is_a_dataclass_of_every_counter(fake_intake):
    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False)).start()
    send_udp(handle.ports.dogstatsd, "a:1|c", "b:2|g", "not a metric", "_e{1,1}:t|x", "_sc|c|0")
    time.sleep(0.1)
    handle.flush()
    st = handle.stats()
    assert isinstance(st, ServicesStats)
    assert (st.dsd_packets, st.dsd_metric_lines, st.dsd_parse_errors, st.dsd_events, st.dsd_service_checks) == \
        (5, 2, 1, 1, 1)
    assert st.payloads_sent >= 2 and st.series_sent >= 2 and st.payloads_dropped == 0
    handle.stop()
    assert handle.stats().dsd_metric_lines == 2


def _post_v04(port: int, traces: list, headers: dict | None = None) -> int:
    import urllib.request

    import msgpack

    req = urllib.request.Request(f"http://127.0.0.1:{port}/v0.4/traces", data=msgpack.packb(traces), method="PUT",
                                 headers={"Content-Type": "application/msgpack", "Datadog-Meta-Lang": "python",
                                          **(headers or {})})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


def test_flush_sends_agent_computed_trace_stats(fake_intake):
    """agent_stats_computation_enabled: flush() sends the open bucket's stats (ClientComputed
    false); a request that says its tracer computed stats is left out."""
    handle = ServerlessServices(local_config(fake_intake, agent_stats_computation_enabled=True, env="py")).start()
    now = time.time_ns()
    span = {"trace_id": 5, "span_id": 1, "parent_id": 0, "service": "py-svc", "name": "http.request",
            "resource": "GET /a", "type": "web", "start": now - 3_000_000, "duration": 3_000_000, "error": 0,
            "meta": {"span.kind": "server"}, "metrics": {}}
    failed = dict(span, trace_id=7, span_id=2, duration=1_000_000, error=1)  # the same key, another trace
    assert _post_v04(handle.ports.trace_agent, [[span], [failed]]) == 200
    other = dict(span, trace_id=6, span_id=3, resource="GET /not-counted")
    assert _post_v04(handle.ports.trace_agent, [[other]], {"Datadog-Client-Computed-Stats": "yes"}) == 200
    deadline = time.monotonic() + 5
    while handle.stats().trace_requests < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    handle.flush(timeout=5)
    (payload,) = fake_intake.stats()
    assert payload["ClientComputed"] is False
    groups = fake_intake.stats_groups()
    assert {g["Resource"] for g in groups} == {"GET /a"}
    (g,) = groups
    assert (g["Hits"], g["Errors"], g["Duration"], g["TopLevelHits"]) == (2, 1, 4_000_000, 2)
    assert (g["ok_sketch"]["count"], g["error_sketch"]["count"]) == (1, 1)
    assert (g["env"], g["lang"], g["SpanKind"]) == ("py", "python", "server")
    st = handle.stats()
    assert (st.trace_stats_spans, st.trace_stats_buckets, st.trace_stats_keys) == (2, 1, 1)
    assert (st.trace_stats_spans_overflow, st.trace_stats_spans_dropped) == (0, 0)
    handle.stop()


def test_concurrent_flush_and_stop_from_threads(fake_intake):
    fake_intake.fail(delay_ms=300, count=-1)
    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False, log_level="off")).start()
    send_udp(handle.ports.dogstatsd, "py.concurrent:1|c")
    time.sleep(0.05)
    errors: list[BaseException] = []

    def run(fn):
        try:
            fn()
        except (NotRunningError, ShutdownTimeoutError):
            pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(handle.flush,)) for _ in range(3)]
    threads += [threading.Thread(target=run, args=(handle.stop,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert not handle.is_running


def test_dropping_a_running_instance_warns_stops_and_frees(fake_intake):
    instance = _core.Instance.start(local_config(fake_intake, use_trace_agent=False)._to_core(), None)
    send_udp(instance.dogstatsd_port, "py.dealloc:1|c")
    time.sleep(0.05)
    with pytest.warns(ResourceWarning, match="deallocated while running"):
        del instance
        gc.collect()
    assert "py.dealloc" in metric_names(fake_intake)  # dds_free stops with a final flush


def test_200_start_stop_cycles_keep_rss_stable(fake_intake):
    # Each cycle is a real one: both services bound, one metric received, sent over HTTP to the
    # intake by the final flush, loop thread joined, everything freed.
    services = ServerlessServices(local_config(fake_intake, log_level="off"))
    sent = 0

    def cycles(n):
        nonlocal sent
        for _ in range(n):
            handle = services.start()
            send_udp(handle.ports.dogstatsd, f"py.cycle:1|c|#n:{sent}")
            sent += 1
            handle.stop()

    cycles(30)  # warm up: allocator arenas, thread stack cache, libcurl/OpenSSL one-time init
    gc.collect()
    before = rss_bytes()
    t0 = time.monotonic()
    cycles(200)
    elapsed = time.monotonic() - t0
    gc.collect()
    grown = rss_bytes() - before
    print(f"200 cycles: {elapsed:.2f} s, RSS {before / 2**20:.1f} MiB -> {grown / 2**10:+.0f} KiB")
    assert grown < 3 * 2**20, f"RSS grew {grown / 2**20:.1f} MiB over 200 start/stop cycles"
    assert len([s for s in fake_intake.series() if s["metric"] == "py.cycle"]) == sent
