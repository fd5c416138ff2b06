"""The asyncio API: start_async, flush_async, stop_async and `async with` run the blocking C calls
on worker threads (the event loop keeps running), and on_status arrives on the event loop."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from datadog_serverless import NotRunningError, ServerlessServices
from tests.py.services_util import local_config, metric_names, send_udp

pytestmark = pytest.mark.asyncio


async def test_start_flush_stop_async(fake_intake):
    handle = await ServerlessServices(local_config(fake_intake)).start_async()
    assert handle.is_running
    send_udp(handle.ports.dogstatsd, "py.async:1|c")
    await asyncio.sleep(0.05)
    await handle.flush_async()
    assert "py.async" in metric_names(fake_intake)
    await handle.stop_async()
    assert not handle.is_running
    with pytest.raises(NotRunningError):
        await handle.stop_async()


async def test_the_loop_keeps_running_during_a_slow_flush(fake_intake):
    fake_intake.fail(delay_ms=600, count=1)
    handle = await ServerlessServices(local_config(fake_intake, use_trace_agent=False)).start_async()
    send_udp(handle.ports.dogstatsd, "py.async.slow:1|c")
    await asyncio.sleep(0.05)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    t0 = time.monotonic()
    await handle.flush_async(timeout=5)
    waited = time.monotonic() - t0
    task.cancel()
    await handle.stop_async()
    assert waited >= 0.5
    assert ticks >= 10, f"the event loop ran only {ticks} ticks during a {waited:.2f} s flush"


async def test_status_events_arrive_on_the_event_loop_in_order():
    loop_thread = threading.get_ident()
    seen = []
    stopped = asyncio.Event()

    def on_status(status):
        seen.append((status.type, status.service, threading.get_ident()))
        if status.type == "stopped":
            stopped.set()  # safe: this runs on the event loop

    handle = await ServerlessServices(local_config(log_level="off")).start_async(on_status)
    await handle.stop_async()
    await asyncio.wait_for(stopped.wait(), 5)
    assert [(t, s) for t, s, _ in seen] == [("ready", "trace-agent"), ("ready", "dogstatsd"), ("stopped", "process")]
    assert {ident for _, _, ident in seen} == {loop_thread}


async def test_coroutine_status_callback():
    got = asyncio.Queue()

    async def on_status(status):
        await got.put(status.type)

    handle = await ServerlessServices(local_config(log_level="off", use_trace_agent=False)).start_async(on_status)
    assert await asyncio.wait_for(got.get(), 5) == "ready"
    await handle.stop_async()
    assert await asyncio.wait_for(got.get(), 5) == "stopped"


async def test_async_with_stops(fake_intake):
    async with await ServerlessServices(local_config(fake_intake, use_trace_agent=False)).start_async() as handle:
        send_udp(handle.ports.dogstatsd, "py.async.with:1|c")
    assert not handle.is_running
    assert "py.async.with" in metric_names(fake_intake)


async def test_many_instances_concurrently(fake_intake):
    services = [ServerlessServices(local_config(fake_intake, use_trace_agent=False)) for _ in range(4)]
    handles = await asyncio.gather(*(s.start_async() for s in services))
    for i, h in enumerate(handles):
        send_udp(h.ports.dogstatsd, f"py.async.many{i}:1|c")
    await asyncio.gather(*(h.stop_async() for h in handles))
    assert {f"py.async.many{i}" for i in range(4)} <= metric_names(fake_intake)
