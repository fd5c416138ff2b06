"""``datadog-serverless-compat``: the console script. It runs the C library's program
(``dds_compat_main``) in this process, so variables, signals, exit codes, log lines and dry-run
output are those of the C binary of the same name: it is the same program.
"""

from __future__ import annotations

import sys

from . import _core

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM, then stop with a final flush. Returns the exit code: 0 after
    a graceful stop, 1 when the services could not start or the stop timed out, 2 for a bad
    argument or configuration."""
    return _core.compat_main(sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
