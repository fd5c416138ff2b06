"""Inside a test root: the static CLI's front door. Runs the binary given as argv[1] (configured
by the DD_* variables the test sets, ports chosen by the kernel), reads the bound ports from its
log, has send.py act as the clients, waits argv[2] seconds for a flush, sends SIGTERM and prints one
JSON line: exit code, and the whole log."""

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

binary, wait_s = sys.argv[1], float(sys.argv[2])
env = {k: v for k, v in __import__("os").environ.items()}
env.update(DD_DOGSTATSD_PORT="0", DD_APM_RECEIVER_PORT="0")
proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
lines, ports = [], {}
ready = threading.Event()


def pump() -> None:
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        m = re.search(r"(trace agent|DogStatsD) listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            ports[m.group(1)] = int(m.group(2))
            if len(ports) == 2:
                ready.set()


threading.Thread(target=pump, daemon=True).start()
if not ready.wait(30):
    proc.kill()
    print(json.dumps({"door": "cli", "error": "not ready", "log": lines}))
    sys.exit(1)
sent = subprocess.run([sys.executable, str(Path(__file__).with_name("send.py")),
                       str(ports["DogStatsD"]), str(ports["trace agent"]), "cli"]).returncode
time.sleep(wait_s)
proc.send_signal(signal.SIGTERM)
rc = proc.wait(30)
time.sleep(0.2)
print(json.dumps({"door": "cli", "send_rc": sent, "exit_code": rc, "log": lines}), flush=True)
