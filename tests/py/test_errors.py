"""datadog_serverless.errors: one class per C error code, all under ServicesError, C messages kept."""
from __future__ import annotations

import pytest

import datadog_serverless as ds
from datadog_serverless.errors import error_from_code


@pytest.mark.parametrize("code,cls,also", [
    ("ERR_INVALID_CONFIG", ds.InvalidConfigError, ValueError),
    ("ERR_ENVIRONMENT_DETECTION", ds.EnvironmentDetectionError, ds.ServicesError),
    ("ERR_TRACE_AGENT_START", ds.TraceAgentStartError, ds.ServicesError),
    ("ERR_DOGSTATSD_START", ds.DogStatsDStartError, ds.ServicesError),
    ("ERR_LOGS_AGENT_START", ds.LogsAgentStartError, ds.ServicesError),
    ("ERR_ALREADY_STARTED", ds.AlreadyStartedError, ds.ServicesError),
    ("ERR_NOT_RUNNING", ds.NotRunningError, ds.ServicesError),
    ("ERR_SHUTDOWN_TIMEOUT", ds.ShutdownTimeoutError, TimeoutError),
    ("ERR_RUNTIME", ds.RuntimeServicesError, RuntimeError),
])
def test_each_code_maps_to_its_class(code, cls, also):
    err = error_from_code(code, "the C message")
    assert type(err) is cls and isinstance(err, ds.ServicesError) and isinstance(err, also)
    assert str(err) == "the C message" and err.code == code
    assert cls.code == code


def test_unknown_code_is_a_plain_services_error():
    err = error_from_code("ERR_UNKNOWN", "odd")
    assert type(err) is ds.ServicesError and err.code == "ERR_UNKNOWN" and str(err) == "odd"


def test_not_running_message_is_the_c_one():
    handle = ds.ServerlessServices(ds.ServicesConfig(dogstatsd_port=0, use_trace_agent=False,
                                                     log_level="off")).start()
    handle.stop()
    with pytest.raises(ds.NotRunningError) as exc:
        handle.flush()
    assert str(exc.value) == "Services not running" and exc.value.code == "ERR_NOT_RUNNING"
