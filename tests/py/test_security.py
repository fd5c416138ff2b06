"""Security defaults (issue 7): loopback-only listeners unless configured, the API key in no log
line at any level, browser requests refused, EVP proxy input validated."""
from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request

from tests.py.cli import Cli

API_KEY = "sec-test-key-abcdef0123456789"
TRACE_PORT_RE = re.compile(r"trace agent listening on [0-9.]+:(\d+)")


def start(intake, **env) -> tuple[Cli, int]:
    base = {"DD_API_KEY": API_KEY, "DD_DD_URL": intake.url, "DD_APM_DD_URL": intake.url,
            "DD_APM_TELEMETRY_DD_URL": intake.url, "DD_EVP_PROXY_CONFIG_DD_URL": intake.url,
            "DD_APM_ENABLED": "true", "DD_APM_RECEIVER_PORT": "0", "DD_LOG_LEVEL": "trace"}
    base.update(env)
    cli = Cli(base)
    cli.wait_ready()
    for _ in range(100):
        for line in cli.stderr_lines:
            m = TRACE_PORT_RE.search(line)
            if m:
                return cli, int(m.group(1))
        time.sleep(0.02)
    raise AssertionError(cli.stderr_lines)


def local_addresses(proto: str, port: int) -> set[str]:
    """Local addresses of the sockets bound to port, read from /proc/net/<proto> (hex)."""
    out = set()
    with open(f"/proc/net/{proto}") as f:
        next(f)
        for line in f:
            local = line.split()[1]
            addr, p = local.split(":")
            if int(p, 16) == port:
                out.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return out


def request(port, method, path, body=b"", headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body if method != "GET" else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_listeners_bind_loopback_only_by_default(fake_intake):
    """Default listeners are on 127.0.0.1 only (read from /proc/net/udp and tcp)."""
    cli, trace_port = start(fake_intake)
    assert local_addresses("udp", cli.port) == {"127.0.0.1"}
    assert local_addresses("tcp", trace_port) == {"127.0.0.1"}
    assert cli.terminate() == 0


def test_non_local_traffic_binds_all_interfaces_when_asked(fake_intake):
    """DD_*_NON_LOCAL_TRAFFIC binds 0.0.0.0, and only then."""
    cli, trace_port = start(fake_intake, DD_DOGSTATSD_NON_LOCAL_TRAFFIC="true", DD_APM_NON_LOCAL_TRAFFIC="true")
    assert local_addresses("udp", cli.port) == {"0.0.0.0"}
    assert local_addresses("tcp", trace_port) == {"0.0.0.0"}
    assert cli.terminate() == 0


def test_api_key_in_no_log_line_at_trace_level(fake_intake):
    """At trace level, through 403s, 500s, proxies and bad input, the API key is in no log line."""
    fake_intake.fail(status=403, count=1, path="/api/v2/series")
    fake_intake.fail(status=500, count=1, path="/api/v2/apmtelemetry")
    cli, trace_port = start(fake_intake)
    cli.send("sec.metric:1|c", "bad line", f"key.in.tags:1|c|#k:{API_KEY}")
    request(trace_port, "POST", "/telemetry/proxy/api/v2/apmtelemetry", b"{}",
            {"Content-Type": "application/json", "DD-API-KEY": "client-key-must-not-pass"})
    request(trace_port, "PUT", "/v0.4/traces", b"\xc1")
    time.sleep(0.3)
    assert cli.terminate() in (0, 1)
    # The key may appear as data (a tag a user sent), never in our own log lines.
    leaked = [l for l in cli.stderr_lines if API_KEY in l and "key.in.tags" not in l]
    assert not leaked, leaked
    assert len(cli.stderr_lines) > 5  # trace level did log
    tele = fake_intake.records(path="/api/v2/apmtelemetry")
    assert tele and all(r["api_key"] == API_KEY for r in tele)  # ours, never the client's


def test_browser_requests_refused(fake_intake):
    """Sec-Fetch-Site: cross-site is refused with 403."""
    cli, port = start(fake_intake)
    status, _ = request(port, "PUT", "/v0.4/traces", b"\x90", {"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _ = request(port, "PUT", "/v0.4/traces", b"\x90")
    assert status == 200
    assert cli.terminate() == 0


def test_evp_proxy_rejects_bad_subdomains_and_paths(fake_intake):
    """EVP proxy: bad subdomains and '..' paths get 400; a good one is forwarded."""
    cli, port = start(fake_intake)
    bad = [("evil.com/x", "/evp_proxy/v2/api/v2/x"), ("a..b", "/evp_proxy/v2/api/v2/x"),
           ("citestcycle-intake", "/evp_proxy/v2/../../etc/passwd"), ("", "/evp_proxy/v2/api/v2/x")]
    for sub, path in bad:
        status, _ = request(port, "POST", path, b"{}", {"X-Datadog-EVP-Subdomain": sub,
                                                        "Content-Type": "application/json"})
        assert status == 400, (sub, path, status)
    status, _ = request(port, "POST", "/evp_proxy/v2/api/v2/citestcycle", b"{}",
                        {"X-Datadog-EVP-Subdomain": "citestcycle-intake", "Content-Type": "application/json"})
    assert status == 202
    assert cli.terminate() == 0
    assert [r["path"] for r in fake_intake.records(path="/api/v2/citestcycle")] == ["/api/v2/citestcycle"]
