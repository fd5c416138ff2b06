"""Inside a test root: the wheel's front door. Starts the services from the installed
`datadog_serverless` (configured by the DD_* variables the test sets), has send.py act as the
clients, flushes, stops, and prints one JSON line of the outcome for the test to check."""

import json
import subprocess
import sys
from pathlib import Path

import datadog_serverless as ds

events = []
handle = ds.ServerlessServices(ds.ServicesConfig.from_env(dogstatsd_port=0, apm_receiver_port=0)).start(
    on_status=lambda st: events.append({"type": st.type, "service": st.service, "message": st.message}))
ports = handle.ports
sent = subprocess.run([sys.executable, str(Path(__file__).with_name("send.py")),
                       str(ports.dogstatsd), str(ports.trace_agent), "python"]).returncode
flush_error = None
try:
    handle.flush(timeout=float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
except ds.ServicesError as exc:
    flush_error = f"{type(exc).__name__}: {exc}"
stop_error = None
try:
    handle.stop(timeout=5.0)  # ShutdownTimeoutError when payloads were dropped: it stopped all the same
except ds.ServicesError as exc:
    stop_error = f"{type(exc).__name__}: {exc}"
stats = handle.stats()
print(json.dumps({"door": "python", "send_rc": sent, "flush_error": flush_error, "stop_error": stop_error, "events": events,
                  "payloads_sent": stats.payloads_sent, "payloads_dropped": stats.payloads_dropped,
                  "running": handle.is_running}), flush=True)
