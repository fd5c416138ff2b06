"""End to end: the CLI with Azure Functions' variables set sends the enhanced metrics to the fake
intake: azure.functions.enhanced.cpu.usage as a sketch on /api/beta/sketches and
azure.functions.enhanced.instance as a series on /api/v2/series, with the Azure tags; traces get
the serverless tags; on Google Cloud Functions outside Google Cloud the metadata check fails
without stopping anything (PARITY.md sections 4 to 6).

The CPU metric reads this machine's cgroup: which file exists decides whether it can be sent, so
the test looks first, with the same order as src_c/enhanced/cgroup_cpu.c.
"""
from __future__ import annotations

import re
import socket
import time
import urllib.request
from pathlib import Path

import msgpack

from tests.py.cli import Cli

API_KEY = "enhanced-e2e-key-0123456789abcdef"
CPU = "azure.functions.enhanced.cpu.usage"
INSTANCE = "azure.functions.enhanced.instance"
AZURE = {
    "FUNCTIONS_EXTENSION_VERSION": "~4",
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "WEBSITE_SITE_NAME": "e2e-func",
    "WEBSITE_OWNER_NAME": "sub-123+e2e-rg-EastUSwebspace-Linux",
    "WEBSITE_SKU": "ElasticPremium",
    "REGION_NAME": "East US",
    "COMPUTERNAME": "E2E-Host-1",
    "DD_SERVERLESS_COMPAT_VERSION": "1.2.3",
    "DD_SERVICE": "e2e-svc",
    "DD_ENV": "e2e",
}
COMMON_TAGS = {"resource_group:e2e-rg", "subscription_id:sub-123", "name:e2e-func", "region:East US",
               "plan_tier:ElasticPremium", "service:e2e-svc", "env:e2e", "serverless_compat_version:1.2.3",
               "origin:azurefunction", "dd.origin:azurefunction"}
TRACE_PORT_RE = re.compile(r"trace agent listening on 127\.0\.0\.1:(\d+)")


def cgroup_cpu_source() -> str | None:
    for p in ("/sys/fs/cgroup/cpu/cpuacct.usage", "/sys/fs/cgroup/cpuacct/cpuacct.usage",
              "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"):
        path = Path(p)
        if path.exists():
            return p if path.read_text().strip().isdigit() else None
    try:
        stat = Path("/sys/fs/cgroup/cpu.stat").read_text()
    except OSError:
        return None
    return "/sys/fs/cgroup/cpu.stat" if re.search(r"^usage_usec \d+$", stat, re.M) else None


def run(intake, seconds: float, platform: dict | None = None, ready: str = "enhanced metrics", **env) -> Cli:
    base = {"DD_API_KEY": API_KEY, "DD_DD_URL": intake.url, **(AZURE if platform is None else platform)}
    base.update(env)
    cli = Cli(base)
    deadline = time.monotonic() + 5
    while not any(ready in line for line in cli.stderr_lines):
        assert time.monotonic() < deadline, cli.stderr_lines
        time.sleep(0.02)
    time.sleep(seconds)
    return cli


def test_cpu_sketch_and_instance_series_reach_the_intake_with_the_azure_tags(fake_intake):
    # DD_USE_DOGSTATSD=false: no socket, but the enhanced metrics still go (as in the Rust binary);
    # the metric namespace is the user's, never applied to them.
    cli = run(fake_intake, 3.4, DD_USE_DOGSTATSD="false", DD_STATSD_METRIC_NAMESPACE="ns")
    assert cli.terminate() == 0, cli.stderr_lines
    assert not any("DogStatsD listening" in line for line in cli.stderr_lines)
    # /home/site/wwwroot is not there: said loudly, and nothing stopped
    assert any("/home/site/wwwroot" in line and "running anyway" in line for line in cli.stderr_lines)

    series = [s for s in fake_intake.series() if s["metric"] == INSTANCE]
    assert series, fake_intake.describe()
    for s in series:
        assert s["type"] == "gauge" and s["interval"] == 10
        assert set(s["tags"]) == COMMON_TAGS | {"instance:e2e-host-1"}
        assert all(v == 1.0 for _, v in s["points"])
    assert not [s for s in fake_intake.series() if s["metric"].startswith("ns.")]

    sketches = [s for s in fake_intake.sketches() if s["metric"] == CPU]
    if cgroup_cpu_source() is None:
        assert sketches == [], "no cgroup CPU counter on this machine, yet a CPU sketch was sent"
        return
    assert sketches, f"{cgroup_cpu_source()} exists but no CPU sketch arrived: {fake_intake.describe()}"
    cnt = 0
    for s in sketches:
        assert set(s["tags"]) == COMMON_TAGS
        for d in s["dogsketches"]:
            cnt += d["cnt"]
            # nanocores: between nothing and every core of the machine busy
            assert 0 <= d["min"] <= d["max"] <= 1e9 * 1024
    # ticks at 1, 2, 3 s: the first one primes, so 2 samples (3 if the stop came a little late)
    assert 2 <= cnt <= 3, cnt


def test_enhanced_metrics_switch_stops_only_the_cpu_metric(fake_intake):
    cli = run(fake_intake, 3.3, DD_ENHANCED_METRICS_ENABLED="false")
    assert cli.terminate() == 0, cli.stderr_lines
    assert [s for s in fake_intake.series() if s["metric"] == INSTANCE]
    assert not [s for s in fake_intake.sketches() if s["metric"] == CPU]


def put_trace(port: int) -> None:
    trace = [[{"trace_id": 7, "span_id": 1, "parent_id": 0, "service": "web", "name": "req", "resource": "/",
               "start": time.time_ns(), "duration": 1000},
              {"trace_id": 7, "span_id": 2, "parent_id": 1, "service": "web", "name": "db", "resource": "q",
               "start": time.time_ns(), "duration": 500}]]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v0.4/traces", data=msgpack.packb(trace), method="PUT",
                                 headers={"Content-Type": "application/msgpack"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_spans_carry_the_serverless_tags_and_function_tags(fake_intake):
    # Waits for the trace port's line, not the enhanced metrics' one: they come from the loop in
    # no fixed order, and the port is read from the trace agent's line.
    cli = run(fake_intake, 0, ready="trace agent listening", DD_APM_ENABLED="true", DD_APM_RECEIVER_PORT="0",
              DD_APM_DD_URL=fake_intake.url, DD_TAGS="team:a zone:b:c,owner:me, team:z")
    put_trace(next(int(m.group(1)) for line in cli.stderr_lines if (m := TRACE_PORT_RE.search(line))))
    assert cli.terminate() == 0, cli.stderr_lines
    spans = {s["span_id"]: s for s in fake_intake.spans()}
    assert set(spans) == {1, 2}
    for s in spans.values():  # every span, as the Rust binary does
        assert s["meta"]["_dd.serverless_compat_version"] == "1.2.3"
        assert s["meta"]["aas.site.name"] == "e2e-func" and s["meta"]["aas.resource.group"] == "e2e-rg"
        assert s["meta"]["aas.resource.id"] == \
            "/subscriptions/sub-123/resourcegroups/e2e-rg/providers/microsoft.web/sites/e2e-func"
        assert s["meta"]["aas.environment.instance_id"] == "unknown"
    assert spans[1]["meta"]["origin"] == "azurefunction" and spans[1]["meta"]["functionname"] == "e2e-func"
    (payload,) = fake_intake.traces()
    (tp,) = payload["tracerPayloads"]
    # k:v with exactly one ':' (zone:b:c is dropped), the last team wins, sorted, joined with ','
    assert tp["tags"]["_dd.tags.function"] == "owner:me,team:z"


class MetadataServer:
    """A Google metadata server on loopback, reached through GCE_METADATA_HOST (the variable
    Google's client libraries honour): the check never leaves the machine."""

    def __init__(self, server_header: str = "Metadata Server for Serverless"):
        import http.server
        import json
        import threading

        doc = json.dumps({"project": {"projectId": "e2e-proj"},
                          "instance": {"region": "projects/123/regions/us-east1"}}).encode()
        self.requests: list[tuple[str, str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the Rust binary POSTs, and so do we)
                outer.requests.append((self.path, self.headers.get("Metadata-Flavor", ""),
                                       self.headers.get("Host", "")))
                self.send_response(200)
                self.send_header("Server", server_header)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(doc)))
                self.end_headers()
                self.wfile.write(doc)

            def version_string(self):
                return server_header

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _gcp_run(fake_intake, metadata_host: str, answered: str):
    """Runs the CLI as on Google Cloud Functions, waits for the line that says the metadata check
    has been answered (`answered`: the detection line is printed before, at start), then sends a
    trace and stops it."""
    gcp = {"K_SERVICE": "e2e-gcf", "FUNCTION_TARGET": "handler", "DD_SERVERLESS_COMPAT_VERSION": "1.2.3",
           "GCE_METADATA_HOST": metadata_host}
    cli = run(fake_intake, 0, platform=gcp, ready="trace agent listening", DD_APM_ENABLED="true",
              DD_APM_RECEIVER_PORT="0", DD_APM_DD_URL=fake_intake.url, DD_LOG_LEVEL="debug")
    port = next(int(m.group(1)) for line in cli.stderr_lines if (m := TRACE_PORT_RE.search(line)))
    deadline = time.monotonic() + 5
    while not any(answered in line for line in cli.stderr_lines):
        assert time.monotonic() < deadline, cli.stderr_lines
        time.sleep(0.02)
    put_trace(port)
    assert cli.terminate() == 0, cli.stderr_lines
    spans = fake_intake.spans()
    assert len(spans) == 2
    for s in spans:
        assert s["meta"]["_dd.serverless_compat_version"] == "1.2.3"
    assert next(s for s in spans if s["parent_id"] == 0)["meta"]["origin"] == "cloudfunction"
    return cli, spans


def test_google_metadata_check_passes_and_tags_spans(fake_intake):
    md = MetadataServer()
    try:
        cli, spans = _gcp_run(fake_intake, md.host, "Google metadata: project e2e-proj")
    finally:
        md.close()
    assert md.requests == [("/computeMetadata/v1/?recursive=true", "Google", "metadata.google.internal")]
    assert not any(" ERROR " in line for line in cli.stderr_lines), cli.stderr_lines
    for s in spans:
        assert s["meta"]["gcrfx.project_id"] == "e2e-proj", s["meta"]
        assert s["meta"]["gcrfx.location"] == "us-east1", s["meta"]
        assert s["meta"]["gcrfx.resource_name"] == "projects/e2e-proj/locations/us-east1/functions/e2e-gcf"


def test_google_metadata_check_failing_stops_nothing(fake_intake):
    # A metadata server that is not Google's serverless one (another Server header): the Rust
    # binary exits; here it is one error line and everything serves on, without gcrfx.* tags.
    md = MetadataServer(server_header="nginx")
    try:
        cli, spans = _gcp_run(fake_intake, md.host, "Google Cloud Functions detected, but")
    finally:
        md.close()
    assert len(md.requests) == 1
    assert any(" ERROR " in line and "Google Cloud Functions detected, but" in line for line in cli.stderr_lines), \
        cli.stderr_lines
    for s in spans:
        assert not any(k.startswith("gcrfx.") for k in s["meta"]), s["meta"]


def test_google_metadata_server_unreachable_stops_nothing(fake_intake):
    # Refused at once (a closed loopback port): reported, and everything serves on.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    cli, _ = _gcp_run(fake_intake, f"127.0.0.1:{closed}", "Google Cloud Functions detected, but")
    assert any("Google Cloud Functions detected, but" in line for line in cli.stderr_lines), cli.stderr_lines
