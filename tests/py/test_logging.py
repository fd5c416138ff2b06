"""datadog_serverless.log: C log lines reach logging.getLogger("datadog_serverless") at the matching
level, the instance's log_level is applied in C, the logger's own level after it, and the API key
never shows."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from datadog_serverless import TRACE, ServerlessServices
from datadog_serverless.log import LEVELS
from tests.py.services_util import API_KEY, local_config, send_udp

LOGGER = "datadog_serverless"


def records_of(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_level_table_matches_dds_log_level():
    assert LEVELS == (TRACE, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
    assert TRACE < logging.DEBUG


def test_info_lines_at_info_and_the_dry_run_warning_at_warning(caplog):
    with caplog.at_level(TRACE, logger=LOGGER):
        handle = ServerlessServices(local_config(log_level="info")).start()
        handle.stop()
    recs = records_of(caplog)
    dsd = [r for r in recs if r.getMessage() == f"DogStatsD listening on 127.0.0.1:{handle.ports.dogstatsd}"]
    assert len(dsd) == 1 and dsd[0].levelno == logging.INFO
    dry = [r for r in recs if r.getMessage().startswith("DD_API_KEY is not set: nothing is sent")]
    assert len(dry) == 1 and dry[0].levelno == logging.WARNING
    assert all(r.levelno >= logging.INFO for r in recs)  # "info": nothing below it is produced


def test_debug_level_passes_debug_lines(caplog):
    with caplog.at_level(TRACE, logger=LOGGER):
        ServerlessServices(local_config(log_level="debug")).start().stop()
    debug = [r for r in records_of(caplog) if r.levelno == logging.DEBUG]
    assert any(r.getMessage().startswith("trace receiver: listening on") for r in debug)


@pytest.mark.parametrize("level,lowest", [("warn", logging.WARNING), ("error", logging.ERROR), ("off", None)])
def test_instance_level_filters_in_c(caplog, level, lowest):
    with caplog.at_level(TRACE, logger=LOGGER):
        ServerlessServices(local_config(log_level=level)).start().stop()
    recs = records_of(caplog)
    if lowest is None:
        assert recs == []
    else:
        assert all(r.levelno >= lowest for r in recs)
    assert not any("listening on" in r.getMessage() for r in recs)


def test_python_logger_level_applies_after(caplog):
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        ServerlessServices(local_config(log_level="info")).start().stop()
    assert records_of(caplog) == []


def test_loop_thread_lines_with_level_and_no_api_key(caplog, fake_intake):
    fake_intake.fail(status=403, count=-1)
    with caplog.at_level(TRACE, logger=LOGGER):
        handle = ServerlessServices(local_config(fake_intake, log_level="info", use_trace_agent=False)).start()
        send_udp(handle.ports.dogstatsd, "py.log.rejected:1|c")
        time.sleep(0.05)
        handle.flush()
        handle.stop()
    recs = records_of(caplog)
    rejected = [r for r in recs if "intake rejected the API key (HTTP 403)" in r.getMessage()]
    assert len(rejected) == 1 and rejected[0].levelno == logging.ERROR
    assert rejected[0].thread != threading.get_ident()  # logged by the loop thread
    assert all(API_KEY not in r.getMessage() for r in recs)


def test_a_handler_that_raises_does_not_reach_c():
    class Broken(logging.Handler):
        def emit(self, record):
            raise RuntimeError("handler down")  # escapes logger.log(): the sink must catch it

    logger = logging.getLogger(LOGGER)
    broken = Broken()
    logger.addHandler(broken)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        handle = ServerlessServices(local_config(log_level="info", use_trace_agent=False)).start()
        send_udp(handle.ports.dogstatsd, "py.log.ok:1|c")
        time.sleep(0.05)
        assert handle.stats().dsd_metric_lines == 1
        handle.stop()
    finally:
        logger.removeHandler(broken)
        logger.setLevel(level)
