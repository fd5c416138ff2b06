"""The send queue bound (DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE) against an intake that accepts
connections and never answers: 500 logs posts of 200 KB with a flush after each, once with the
default 32 MiB bound and once effectively unbounded. Prints the peak queued bytes, the logs batches
dropped and the process's RSS growth.

Reproduce (from the repository root, after scripts/test-python built .venv):
    .venv/bin/python bench/send_queue.py
"""
import json, sys, time, urllib.request
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from datadog_serverless import ServerlessServices, ShutdownTimeoutError
from tests.intake.client import FakeIntake
from tests.py.services_util import local_config, rss_bytes

def run(bound):
    with FakeIntake() as intake:
        kw = {} if bound is None else {"send_queue_max_bytes": bound}
        cfg = local_config(intake, use_trace_agent=False, logs_enabled=True, logs_port=0, logs_dd_url=intake.url,
                           logs_use_compression=False, **kw)
        ev = []
        h = ServerlessServices(cfg).start(on_status=ev.append)
        while not any(e.service == "logs-agent" for e in ev): time.sleep(0.01)
        port = [e.port for e in ev if e.service == "logs-agent"][0]
        intake.fail(delay_ms=120000, count=-1, path="/api/v2/logs")
        rss0 = rss_bytes()
        body = json.dumps([{"message": "x" * 200_000, "timestamp": 1}]).encode()
        peak = 0
        for i in range(500):
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v1/input", data=body), timeout=10).read()
            try: h.flush(timeout=0.001)
            except ShutdownTimeoutError: pass
            peak = max(peak, h.stats().send_queue_bytes)
        st = h.stats()
        print(f"bound={bound or 'default 32 MiB'}: peak send_queue_bytes={peak/2**20:.1f} MiB, "
              f"dropped_logs={st.send_queue_dropped_logs}, RSS growth={(rss_bytes()-rss0)/2**20:.0f} MiB")
        intake.clear_failures()
        try: h.stop(timeout=0.5)
        except ShutdownTimeoutError: pass

run(None)
run(4294967295)
