"""Process exit and fork: a script that starts the services and simply ends still delivers its data
(the atexit hook stops live instances with a final flush), never hangs, exits with its own code;
a forked child neither hangs nor sends the parent's data a second time."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from tests.py.services_util import child_env

START_AND_END = textwrap.dedent("""
    import logging, socket, sys
    from datadog_serverless import ServerlessServices, ServicesConfig

    logging.basicConfig(level=logging.INFO)
    events = []
    handle = ServerlessServices(ServicesConfig.from_env(log_level="info")).start(on_status=events.append)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(f"py.exit.run:1|c|#run:{sys.argv[1]}".encode(), ("127.0.0.1", handle.ports.dogstatsd))
    if sys.argv[2] == "raise":
        raise SystemExit(3)
    if sys.argv[2] == "error":
        raise ValueError("the script fails; its data is still sent")
    # "end": no stop(), no flush(): the script just ends
""")


def run_script(code: str, *args: str, env: dict[str, str], timeout: float = 30) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return out, time.monotonic() - t0


def sent_series(intake, metric: str) -> list[dict]:
    """Series of `metric` carrying a sample (counters zero-filled in a later bucket left out)."""
    return [s for s in intake.series() if s["metric"] == metric and any(v for _, v in s["points"])]


def runs_received(intake) -> list[str]:
    return [t.split(":", 1)[1] for s in sent_series(intake, "py.exit.run") for t in s["tags"] if t.startswith("run:")]


def test_start_and_end_without_stop_20_times(fake_intake):
    env = child_env(fake_intake)
    times = []
    for i in range(20):
        out, elapsed = run_script(START_AND_END, str(i), "end", env=env)
        assert out.returncode == 0, out.stderr
        assert "DogStatsD listening on 127.0.0.1:" in out.stderr  # C log lines went through logging
        assert "Traceback" not in out.stderr and "Fatal Python error" not in out.stderr, out.stderr
        times.append(elapsed)
    assert sorted(runs_received(fake_intake), key=int) == [str(i) for i in range(20)]
    assert max(times) < 10, times  # no hang at exit
    print(f"start-and-end runs: median {sorted(times)[10]:.3f} s, max {max(times):.3f} s")


@pytest.mark.parametrize("how,code", [("raise", 3), ("error", 1)])
def test_exit_code_is_the_scripts_and_data_still_arrives(fake_intake, how, code):
    out, elapsed = run_script(START_AND_END, how, how, env=child_env(fake_intake))
    assert out.returncode == code, out.stderr
    assert elapsed < 10
    assert runs_received(fake_intake) == [how]


STOP_FROM_CALLBACK_THEN_END = textwrap.dedent("""
    import socket, threading
    from datadog_serverless import ServerlessServices, ServicesConfig

    known = threading.Event()
    holder = {}

    def on_status(status):
        if status.type == "ready" and status.service == "dogstatsd":
            known.wait(5)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"py.exit.cbstop:1|c", ("127.0.0.1", holder["h"].ports.dogstatsd))
            holder["h"].stop()  # starts the stop; nobody joins before the atexit hook

    holder["h"] = ServerlessServices(ServicesConfig.from_env(log_level="warn")).start(on_status=on_status)
    known.set()
""")


def test_stop_started_from_the_callback_is_joined_at_exit(fake_intake):
    out, elapsed = run_script(STOP_FROM_CALLBACK_THEN_END, env=child_env(fake_intake))
    assert out.returncode == 0, out.stderr
    assert elapsed < 10
    assert len(sent_series(fake_intake, "py.exit.cbstop")) == 1


FORK = textwrap.dedent("""
    import json, os, socket, sys, time
    from datadog_serverless import NotRunningError, ServerlessServices, ServicesConfig

    def send(port, line):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(line.encode(), ("127.0.0.1", port))

    handle = ServerlessServices(ServicesConfig.from_env(log_level="warn")).start()
    send(handle.ports.dogstatsd, "py.fork.before:1|c")
    time.sleep(0.1)  # received by the parent's loop before the fork
    pid = os.fork()
    if pid == 0:
        report = {"running": handle.is_running}
        try:
            handle.flush()
            report["flush"] = "ok"
        except NotRunningError as exc:
            report["flush"] = str(exc)
        t0 = time.monotonic()
        handle.stop()  # the parent's instance: nothing of it runs here, returns at once
        report["stop_s"] = time.monotonic() - t0
        own = ServerlessServices(ServicesConfig.from_env(log_level="warn")).start()
        send(own.ports.dogstatsd, "py.fork.child:1|c")
        print(json.dumps(report), flush=True)
        sys.exit(0)  # the child's atexit hook stops its own instance only
    _, status = os.waitpid(pid, 0)
    send(handle.ports.dogstatsd, "py.fork.after:1|c")
    print(json.dumps({"child_status": status}), flush=True)
""")


def test_fork_child_is_inert_and_nothing_is_sent_twice(fake_intake):
    out, elapsed = run_script(FORK, env=child_env(fake_intake))
    assert out.returncode == 0, out.stderr
    assert elapsed < 15
    child, parent = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert parent["child_status"] == 0
    assert child["running"] is False and child["flush"] == "Services not running" and child["stop_s"] < 0.5
    before = sent_series(fake_intake, "py.fork.before")
    assert len(before) == 1, before  # sent by the parent alone
    assert sum(v for _, v in before[0]["points"]) == pytest.approx(0.1)  # one sample, as a rate
    assert len(sent_series(fake_intake, "py.fork.after")) == 1
    assert len(sent_series(fake_intake, "py.fork.child")) == 1
