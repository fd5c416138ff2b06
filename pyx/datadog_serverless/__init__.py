"""datadog-serverless: the Datadog DogStatsD server and trace agent, inside your function's process.

    from datadog_serverless import ServerlessServices, ServicesConfig

    handle = ServerlessServices(ServicesConfig.from_env()).start()
    ...                      # clients send to 127.0.0.1:8125 (DogStatsD) and :8126 (traces)
    handle.flush()           # before the function returns: the platform may freeze the process
    handle.stop()            # or let the atexit hook do it when the script ends

The work is done by the C library; this package converts values and manages lifetimes.
"""

from .config import ServicesConfig
from .errors import (
    AlreadyStartedError,
    DogStatsDStartError,
    EnvironmentDetectionError,
    InvalidConfigError,
    LogsAgentStartError,
    NotRunningError,
    RuntimeServicesError,
    ServicesError,
    ShutdownTimeoutError,
    TraceAgentStartError,
)
from .log import TRACE
from .services import Ports, ServerlessServices, ServicesHandle, ServicesStats, ServiceStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    __version__: str


def __getattr__(name: str) -> object:
    # The C library's version, read from the extension, which this package imports only when it
    # is first needed (services.py says why).
    if name == "__version__":
        from . import _core

        global __version__
        __version__ = _core.version()
        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ServerlessServices",
    "ServicesConfig",
    "ServicesHandle",
    "ServiceStatus",
    "ServicesStats",
    "Ports",
    "ServicesError",
    "InvalidConfigError",
    "EnvironmentDetectionError",
    "TraceAgentStartError",
    "DogStatsDStartError",
    "LogsAgentStartError",
    "AlreadyStartedError",
    "NotRunningError",
    "ShutdownTimeoutError",
    "RuntimeServicesError",
    "TRACE",
    "__version__",
]
