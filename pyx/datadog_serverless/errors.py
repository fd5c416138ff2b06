"""Exceptions: one class per error code of the C library, all under :class:`ServicesError`.

The message of every exception raised by this package is the C library's message, word for word
("Invalid configuration: dogstatsd_port must be 0-65535, got 70000"), and ``code`` is the C code's
stable name (``"ERR_INVALID_CONFIG"``, ...), the same string the Node.js package uses.
"""

from __future__ import annotations

__all__ = [
    "ServicesError",
    "InvalidConfigError",
    "EnvironmentDetectionError",
    "TraceAgentStartError",
    "DogStatsDStartError",
    "AlreadyStartedError",
    "NotRunningError",
    "ShutdownTimeoutError",
    "RuntimeServicesError",
    "error_from_code",
]


class ServicesError(Exception):
    """Base class of every error of the serverless services.

    ``code`` is the C error's stable name (``dds_errcode_name``), e.g. ``"ERR_NOT_RUNNING"``.
    """

    code: str = "ERR_UNKNOWN"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidConfigError(ServicesError, ValueError):
    """A configuration field (or ``DD_*`` variable) is invalid; the message names it."""

    code = "ERR_INVALID_CONFIG"


class EnvironmentDetectionError(ServicesError):
    """The cloud environment could not be detected (reserved: detection never fails today)."""

    code = "ERR_ENVIRONMENT_DETECTION"


class TraceAgentStartError(ServicesError):
    """The trace agent could not start (its port is taken, a bad socket path, ...)."""

    code = "ERR_TRACE_AGENT_START"


class DogStatsDStartError(ServicesError):
    """The DogStatsD server could not start (its port is taken, a bad socket path, ...)."""

    code = "ERR_DOGSTATSD_START"


class LogsAgentStartError(ServicesError):
    """The logs agent could not start (its port is taken, ...)."""

    code = "ERR_LOGS_AGENT_START"


class AlreadyStartedError(ServicesError):
    """``start()`` was called on a :class:`ServerlessServices` whose services still run."""

    code = "ERR_ALREADY_STARTED"


class NotRunningError(ServicesError):
    """``flush()`` or ``stop()`` on services that are not running (stopped, or never started)."""

    code = "ERR_NOT_RUNNING"


class ShutdownTimeoutError(ServicesError, TimeoutError):
    """``stop()`` or ``flush()`` ran out of time before the intake answered every payload."""

    code = "ERR_SHUTDOWN_TIMEOUT"


class RuntimeServicesError(ServicesError, RuntimeError):
    """A runtime failure of the library (out of memory, thread creation, ...)."""

    code = "ERR_RUNTIME"


_BY_CODE: dict[str, type[ServicesError]] = {
    cls.code: cls
    for cls in (
        InvalidConfigError,
        EnvironmentDetectionError,
        TraceAgentStartError,
        DogStatsDStartError,
        LogsAgentStartError,
        AlreadyStartedError,
        NotRunningError,
        ShutdownTimeoutError,
        RuntimeServicesError,
    )
}

# The header documents this message for DDS_ERR_ALREADY_STARTED, but no C call returns that
# code: the "already started" state belongs to the binding's ServerlessServices object.
ALREADY_STARTED_MESSAGE = "Services already started"


def error_from_code(code: str, message: str) -> ServicesError:
    """The exception for a C error: ``code`` is its stable name, ``message`` its C message."""
    return _BY_CODE.get(code, ServicesError)(message, code)
