"""``python -m datadog_serverless``: the same program as ``datadog-serverless-compat``."""

import sys

from .compat import main

sys.exit(main())
