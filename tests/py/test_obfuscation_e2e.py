"""End to end: span obfuscation in the CLI's trace agent. The real `ddtrace` sqlite3 integration
makes `sql` spans whose resources carry literals; hand-made redis, valkey, memcached and http
spans (msgpack, v0.4) cover the other obfuscators and DD_APM_REPLACE_TAGS. The fake intake shows
what Datadog would store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.py.cli import REPO
from tests.py.test_trace_e2e import http, start

msgpack = pytest.importorskip("msgpack")
pytest.importorskip("ddtrace")

SQL_APP = textwrap.dedent("""
    import json, sqlite3
    from ddtrace import patch, tracer
    patch(sqlite3=True)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE users (id INTEGER, name TEXT, email TEXT)")
    db.execute("INSERT INTO users VALUES (1, 'alice', 'alice@example.com'), (2, 'bob', 'bob@example.com')")
    db.execute("SELECT name FROM users WHERE id = 2 AND email = 'bob@example.com' /* secret */").fetchall()
    db.execute("SELECT name AS n FROM users WHERE id IN (1, 2, 3) LIMIT 10, 20").fetchall()
    tracer.shutdown()
    print(json.dumps("done"), flush=True)
""")


def test_ddtrace_sqlite_resources_are_obfuscated(fake_intake):
    cli, port = start(fake_intake)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env.update({"DD_TRACE_AGENT_URL": f"http://127.0.0.1:{port}", "DD_SERVICE": "e2e-sql",
                "DD_REMOTE_CONFIGURATION_ENABLED": "false", "PYTHONPATH": str(REPO)})
    out = subprocess.run([sys.executable, "-c", SQL_APP], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    want = {
        "INSERT INTO users VALUES ( ? )",
        "SELECT name FROM users WHERE id = ? AND email = ?",
        "SELECT name FROM users WHERE id IN ( ? ) LIMIT ?",
    }
    fake_intake.wait_for(lambda i: want <= {s["resource"] for s in i.spans() if s["type"] == "sql"}, timeout=15)
    assert cli.terminate() == 0
    sql = [s for s in fake_intake.spans() if s["type"] == "sql"]
    for s in sql:
        assert s["meta"]["sql.query"] == s["resource"]
        assert "bob" not in s["resource"] and "secret" not in s["resource"] and "alice" not in s["resource"]
    assert any(s["resource"] == "CREATE TABLE users ( id INTEGER, name TEXT, email TEXT )" for s in sql)


def span(span_id: int, type_: str, resource: str, meta: dict) -> dict:
    return {"service": "cache", "name": f"{type_}.command", "resource": resource, "trace_id": 77, "span_id": span_id,
            "parent_id": 0, "start": 1_795_530_200_000_000_000, "duration": 1000, "error": 0, "meta": meta,
            "metrics": {}, "type": type_}


HAND_MADE = [
    span(1, "redis", "set session:42 token\nauth hunter2",
         {"redis.raw_command": "SET session:42 s3cr3t-token\nAUTH hunter2"}),
    span(2, "valkey", "HSET user:1 email", {"valkey.raw_command": "HSET user:1 email bob@example.com"}),
    span(3, "memcached", "set", {"memcached.command": "set user:1 0 60 15\r\nbob@example.com"}),
    span(4, "http", "GET /users", {"http.url": "http://api.local/users/1234/orders?token=abc",
                                   "error.stack": "Traceback: secret frame"}),
    span(5, "sql", "SELECT * FROM t WHERE id = 'unterminated", {}),
]


def send(port: int) -> None:
    status, _, body = http(port, "PUT", "/v0.4/traces", msgpack.packb([HAND_MADE]),
                           {"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "1"})
    assert status == 200, body


def by_id(intake) -> dict[int, dict]:
    return {s["span_id"]: s for s in intake.spans()}


def test_hand_made_spans_with_the_go_agent_defaults(fake_intake):
    cli, port = start(fake_intake)
    send(port)
    assert cli.terminate() == 0
    got = by_id(fake_intake)
    assert got[1]["resource"] == "SET AUTH"
    assert got[1]["meta"]["redis.raw_command"] == "SET session:42 ?\nAUTH ?"
    assert got[2]["resource"] == "HSET"
    assert got[2]["meta"]["valkey.raw_command"] == "HSET user:1 email ?"
    assert got[3]["meta"]["memcached.command"] == ""  # keep_command off: the Agent blanks it
    assert got[4]["meta"]["http.url"] == "http://api.local/users/1234/orders?token=abc"
    assert got[4]["meta"]["error.stack"] == "Traceback: secret frame"
    assert got[5]["resource"] == got[5]["meta"]["sql.query"] == "Non-parsable SQL query"


def test_hand_made_spans_with_every_option(fake_intake):
    rules = [{"name": "*", "pattern": "(user:)\\d+", "repl": "${1}?"},
             {"name": "resource.name", "pattern": "^GET", "repl": "READ"}]
    cli, port = start(fake_intake, DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS="true",
                      DD_APM_OBFUSCATION_VALKEY_ENABLED="false", DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND="true",
                      DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS="true",
                      DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING="true", DD_APM_OBFUSCATION_REMOVE_STACK_TRACES="true",
                      DD_APM_REPLACE_TAGS=json.dumps(rules))
    send(port)
    assert cli.terminate() == 0
    got = by_id(fake_intake)
    assert got[1]["meta"]["redis.raw_command"] == "SET ?"
    assert got[2]["meta"]["valkey.raw_command"] == "HSET user:? email bob@example.com"  # replace rule only
    assert got[3]["meta"]["memcached.command"] == "set user:? 0 60 15"
    assert got[4]["meta"]["http.url"] == "http://api.local/users/?/orders?"
    assert got[4]["resource"] == "READ /users"
    assert got[4]["meta"]["error.stack"] == "?"


def test_bad_replace_rule_is_a_config_error():
    from tests.py.cli import Cli
    cli = Cli({"DD_APM_REPLACE_TAGS": '[{"name": "*", "pattern": "(?i)secret", "repl": "?"}]'})
    rc = cli.proc.wait(10)
    assert rc == 2
    assert any("apm_replace_tags: rule 0 pattern '(?i)secret'" in l for l in cli.stderr_lines), cli.stderr_lines


def test_client_stats_groups_get_the_span_resources(fake_intake):
    """Client-computed stats carry each group's resource: it is obfuscated like the spans' (the Go
    Agent's obfuscateStatsGroup), so raw SQL does not reach Datadog through /v0.6/stats."""
    cli, port = start(fake_intake)
    groups = [{"Service": "db", "Name": "q", "Resource": "SELECT * FROM users WHERE email = 'bob@example.com'",
               "Type": "sql", "Hits": 3, "Errors": 0, "Duration": 30},
              {"Service": "cache", "Name": "c", "Resource": "SET session:1 token", "Type": "redis", "Hits": 1},
              {"Service": "web", "Name": "w", "Resource": "GET /users/42", "Type": "web", "Hits": 2}]
    body = msgpack.packb({"Hostname": "", "Env": "e2e", "Version": "1", "Lang": "python", "TracerVersion": "2",
                          "RuntimeID": "r", "Sequence": 1,
                          "Stats": [{"Start": 1_795_530_200_000_000_000, "Duration": 10_000_000_000,
                                     "Stats": groups}]})
    status, _, _ = http(port, "PUT", "/v0.6/stats", body, {"Content-Type": "application/msgpack"})
    assert status == 200
    assert cli.terminate() == 0
    (stats,) = fake_intake.stats()
    got = [g["Resource"] for g in stats["Stats"][0]["Stats"][0]["Stats"]]
    assert got == ["SELECT * FROM users WHERE email = ?", "SET", "GET /users/42"]


SQL_SPANS = [
    span(11, "sql", "SELECT * FROM users WHERE email = 'bob@example.com' AND id = 42", {}),
    span(12, "sql", "UPDATE t SET a = 1, b = 'x' WHERE id IN (1, 2, 3)", {}),
    span(13, "sql", "SELECT * FROM t WHERE id = 'unterminated", {}),
]
SQL_WANT = {11: "SELECT * FROM users WHERE email = ? AND id = ?", 12: "UPDATE t SET a = ? b = ? WHERE id IN ( ? )",  # the Agent drops a "," after a literal
            13: "Non-parsable SQL query"}


@pytest.mark.parametrize("cache_env", [{}, {"DD_APM_OBFUSCATION_CACHE_ENABLED": "false"},
                                       {"DD_APM_OBFUSCATION_CACHE_MAX_SIZE": "1"}],
                         ids=["cache-default", "cache-off", "cache-1-byte"])
def test_sql_resources_are_the_same_from_the_obfuscation_cache_or_without_it(fake_intake, cache_env):
    # The same spans in three requests: with the cache on, the second and third are answered from it.
    cli, port = start(fake_intake, **cache_env)
    for trace_id in (1, 2, 3):
        spans = [{**s, "trace_id": trace_id} for s in SQL_SPANS]
        status, _, body = http(port, "PUT", "/v0.4/traces", msgpack.packb([spans]),
                               {"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "1"})
        assert status == 200, body
    assert cli.terminate() == 0
    got = [(s["trace_id"], s["span_id"], s["resource"], s["meta"].get("sql.query")) for s in fake_intake.spans()]
    assert sorted(got) == sorted((t, i, r, r) for t in (1, 2, 3) for i, r in SQL_WANT.items())


def test_a_bad_obfuscation_cache_size_is_a_config_error():
    from tests.py.cli import Cli
    cli = Cli({"DD_APM_ENABLED": "true", "DD_APM_OBFUSCATION_CACHE_MAX_SIZE": "lots"})
    assert cli.proc.wait(10) == 2
    cli.terminate()
    assert any("DD_APM_OBFUSCATION_CACHE_MAX_SIZE" in line for line in cli.stderr_lines), cli.stderr_lines
