"""Where the C library's log lines go: ``logging.getLogger("datadog_serverless")``.

Each line arrives at the level the C library gave it: trace -> :data:`TRACE` (5, below DEBUG),
debug -> DEBUG, info -> INFO, warn -> WARNING, error -> ERROR. Two filters apply, in order: the
instance's own ``log_level`` (``ServicesConfig.log_level``, default ``"info"``; applied in C, so
lines below it cost nothing), then this logger's level and handlers, as for any Python logger.
The API key never appears in a line (the C library redacts it).

The sink is process-wide (``dds_set_log_fn``): it is installed once, when the extension is
imported, and serves every instance of the process. The standalone program
(``datadog-serverless-compat``) writes its lines to stderr itself, exactly as the C binary does.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["TRACE", "logger"]

#: The level of the C library's "trace" lines (more detailed than DEBUG).
TRACE = 5

# Indexed by dds_log_level: TRACE, DEBUG, INFO, WARN, ERROR (OFF is never logged). The numbers
# are logging.DEBUG, INFO, WARNING and ERROR: `logging` itself (about 5 ms with `threading`,
# `traceback`, `string`, ...) is imported only when a line has to reach it, see _core._emit_log.
LEVELS = (TRACE, 10, 20, 30, 40)
WARNING = 30

logger: logging.Logger


def __getattr__(name: str) -> object:
    """``logger``, ``logging.getLogger("datadog_serverless")``, made on first use."""
    if name == "logger":
        import logging

        global logger
        logger = logging.getLogger("datadog_serverless")
        return logger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
