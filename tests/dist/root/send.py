"""What a DogStatsD client and a tracer do, with nothing but the standard library (it runs inside
the bare test roots): one metric datagram over UDP, one trace (msgpack v0.4) over HTTP.

Usage: python3 send.py DOGSTATSD_PORT TRACE_PORT TAG
Prints the trace agent's HTTP status; exits non-zero when the trace was not accepted.
"""

import http.client
import socket
import struct
import sys


def mp(value) -> bytes:
    """A minimal msgpack encoder: the types a v0.4 trace needs."""
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) < 32:
            return bytes([0xA0 | len(raw)]) + raw
        return b"\xd9" + bytes([len(raw)]) + raw if len(raw) < 256 else b"\xda" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        return b"\xcf" + struct.pack(">Q", value) if value >= 0 else b"\xd3" + struct.pack(">q", value)
    if isinstance(value, list):
        return bytes([0x90 | len(value)]) + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        return bytes([0x80 | len(value)]) + b"".join(mp(k) + mp(v) for k, v in value.items())
    raise TypeError(type(value))


def main() -> int:
    dsd_port, trace_port, tag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(f"dist.check:1|c|#door:{tag}".encode(), ("127.0.0.1", dsd_port))
    span = {
        "trace_id": 4242, "span_id": 4243, "parent_id": 0, "start": 1_700_000_000_000_000_000,
        "duration": 1_000_000, "error": 0, "name": "dist.check", "service": "dist-" + tag,
        "resource": "GET /dist", "type": "web", "meta": {"door": tag}, "metrics": {},
    }
    body = mp([[span]])
    conn = http.client.HTTPConnection("127.0.0.1", trace_port, timeout=10)
    conn.request("PUT", "/v0.4/traces", body=body, headers={
        "Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "1"})
    status = conn.getresponse().status
    conn.close()
    print(f"trace PUT: {status}", flush=True)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
