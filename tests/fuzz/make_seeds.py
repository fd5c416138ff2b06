"""Writes the seed corpora of tests/fuzz/seeds/ from the unit tests' cases: the PROTOCOL.md
edge-case rows and feature lines for DogStatsD, v0.4/v0.5/v0.7 payloads shaped like the real
tracers' for the trace decoders and the msgpack reader, and environment sets for the config.
Run from the repo root: python3 tests/fuzz/make_seeds.py (needs the msgpack package)."""
from pathlib import Path

import msgpack

ROOT = Path(__file__).parent / "seeds"

DOGSTATSD = [
    b"a:1|c\n", b"a:1|c\r\n", b"\n\n", b"", b"a:|c", b":1|c", b"a1|c", b"a:1", b"a:1|x", b"a:1|C", b"a:1|",
    b"a:1|c|@abc", b"a:1|g|T0", b"a:1::2|h", b"u:a:b|s", b"a:1|c|#x,,y",
    b"_e{0,4}:|text", b"_e{5,100}:hello|short", b"_sc||0", b"_sc|n|4",
    b"page.views:1|c|@0.5|#env:prod,host:web-1,device:sda1|T1795530200|c:abc|e:ext|card:low",
    b"lat:1.5:2.5:-3e2|d|#a:b\nlat:+4|ms\ng:nan|g\ng:inf|g\nset:alice|s",
    b"dd.metric:1|c|#dd.internal.resource:database_instance:db1\ndatadog.dogstatsd.client.metrics:3|c",
    "_e{9,7}:caf\u00e9 \u2615|text \u00e9".encode(),
    b"_e{5,14}:title|line\\\\none two|d:1795530200|h:host|k:agg|p:low|s:src|t:error|#a:b,c",
    b"_sc|svc.check|2|d:1795530200|h:host|#a:b|m:down\\\\nhere",
    b"x" * 300 + b":1|c|#" + b",".join(b"tag%d:v" % i for i in range(50)),
]

# POST /v1/input bodies: the shapes the Rust logs agent's tests post, then the edge cases.
LOGS = [
    b"[]",
    b'[{"message":"hello","timestamp":1700000000000,"service":"svc","ddsource":"node","ddtags":"a:b,c:d",'
    b'"status":"info"}]',
    '[{"message":"caf\u00e9 \\ud83d\\ude00 \\"q\\"","timestamp":-1,"lambda":{"arn":"arn:aws:lambda:x",'
    '"request_id":"r"}},\n {"timestamp":2,"message":"","n":[1,2.5e-3,true,false,null,{"a":[]}]}]'.encode(),
    b'[{"message":"m","timestamp":1.5}]',
    b'[{"message":"m"}]',
    b"[[[[[[[[[[",
    b'[{"message":"\\ud800","timestamp":9223372036854775807}]',
]


def span(i, parent=0, **extra):
    s = {"service": "web", "name": "web.request", "resource": "GET /x", "trace_id": 2**64 - 1 - i,
         "span_id": 1000 + i, "start": 1795530200_000_000_000, "duration": 12345, "error": 0,
         "meta": {"http.url": "http://h/p?q=1", "card": "4111 1111 1111 1111", "env": "prod"},
         "metrics": {"_sampling_priority_v1": 1, "_dd.measured": 1.0}, "type": "web"}
    if parent:
        s["parent_id"] = parent
    s.update(extra)
    return s


def v04():
    links = [{"trace_id": 1, "trace_id_high": 2, "span_id": 3, "attributes": {"k": "v"}, "tracestate": "t", "flags": 1}]
    return msgpack.packb([[span(0), span(1, parent=1000, span_links=links, meta_struct={"m": b"\x81\xa1a\x01"})],
                          [span(5, service="", name="")]])


def v05():
    table = ["", "web", "web.request", "GET /x", "http.url", "http://h", "_sampling_priority_v1", "web"]
    spans = [[1, 2, 3, 2**64 - 1, 10, 0, 1795530200_000_000_000, 999, 0, {4: 5}, {6: 1.0}, 7],
             [1, 2, 3, 2**64 - 1, 11, 10, 1795530200_000_000_100, 99, 1, {}, {}, 0]]
    return msgpack.packb([table, [spans]])


def v07():
    return msgpack.packb({"container_id": "c", "language_name": "nodejs", "language_version": "20",
                          "tracer_version": "5", "runtime_id": "r", "env": "e", "hostname": "h",
                          "app_version": "1", "tags": {"a": "b"},
                          "chunks": [{"priority": 1, "origin": "lambda", "spans": [span(0)], "tags": {"t": "v"},
                                      "dropped_trace": False}]})


def write(target, items):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(items):
        (d / f"seed-{i:03d}").write_bytes(data)


write("fuzz_dogstatsd", DOGSTATSD)
write("fuzz_trace", [b"\x00" + v04(), b"\x01" + v05(), b"\x02" + v07(), b"\x00\x90", b"\x01\x92\x90\x90"])
write("fuzz_msgpack", [v04(), v05(), v07(), msgpack.packb([1.5, -1, 2**64 - 1, None, True, b"bin", {"k": [1]}])])
write("fuzz_config", [b"\x0dDD_DOGSTATSD_PORT-ish\x00", b"\x0d70000\x00\x01datadoghq.eu\x00\x07debug\x00",
                      b"\x12my_ns.v2\x00\x15max,median,p99\x00\x160.95 0.5\x00",
                      b"\x02http://127.0.0.1:1/\x00\x0cmaybe\x00"])
write("fuzz_logs", LOGS)
# First byte: the SQL dialect (0 generic, 1 mssql, 2 mysql, 3 postgresql, 4 oracle).
SQL = [
    b"\x00SELECT * FROM users WHERE id = 42 AND name = 'bob' -- c",
    b"\x00INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'); /* c */",
    b"\x00SELECT a AS b FROM `t`.`u` WHERE c IN (:p) LIMIT 10, 20",
    b"\x00{call proc(?, 'a', $1)} $tag$ body $tag$ $$x$$ 0x1F X'ff' -1.5e3 .5",
    b"\x01SELECT TOP 5 [a] AS [b c] FROM #tmp WHERE x = N'\\'",
    b"\x02select * from t where s = 'it\\'s' # comment",
    b"\x03SELECT data->>'k', tags #> '{a}', tags ?| array['x'] FROM t WHERE j @> '{}' AND $1::text <@ y",
    b"\x04SELECT * FROM dual WHERE d = TO_DATE('2020-01-01') AND id -.x5",
    b"\x00SET k v\nAUTH secret\nBITFIELD k SET u8 0 255\nZADD k NX 1 m\r\nvalue",
    "\x00SELECT '\u00e9', \u7f7f FROM t WHERE x = \"\u00e9\"".encode(),
]
write("fuzz_sql", SQL)
print("seeds written to", ROOT)
