"""A script traced by the real `ddtrace` tracer and instrumented with the real `datadog` DogStatsD
client, both talking to the services embedded in the same process.

The script starts the services, does its work, and ends: the atexit hooks flush the tracer and
then stop the services with a final flush. atexit hooks run last-registered-first, so
`datadog_serverless` is imported before `ddtrace` (whose exit flush must still find the agent
running). Configured by the usual DD_* variables. Run: python examples/python/clients.py
"""

import os

from datadog_serverless import ServerlessServices, ServicesConfig

handle = ServerlessServices(ServicesConfig.from_env()).start()
dogstatsd_port, trace_port = handle.ports

# The clients find the services through their own variables, read when they are imported. With
# the default ports (8125, 8126) there is nothing to set; with DD_*_PORT=0 the ports are only
# known now.
os.environ["DD_TRACE_AGENT_URL"] = f"http://127.0.0.1:{trace_port}"
os.environ["DD_DOGSTATSD_URL"] = f"udp://127.0.0.1:{dogstatsd_port}"

from datadog import initialize, statsd  # noqa: E402
from ddtrace import tracer  # noqa: E402

initialize(statsd_host="127.0.0.1", statsd_port=dogstatsd_port)

with tracer.trace("checkout.request", service="example-shop", resource="POST /checkout", span_type="web") as root:
    root.set_tag("customer.tier", "gold")
    with tracer.trace("db.query", service="example-db", resource="SELECT * FROM carts", span_type="sql"):
        statsd.increment("example.checkout.queries", tags=["table:carts"])
    with tracer.trace("payment.charge"):
        statsd.distribution("example.checkout.amount", 42.5, tags=["currency:eur"])
    statsd.increment("example.checkout.orders", tags=["payment:card"])

print(f"trace {root.trace_id:x} sent to 127.0.0.1:{trace_port}, metrics to 127.0.0.1:{dogstatsd_port}")
# Nothing else to do: at exit ddtrace flushes its spans to the agent, then the services stop
# with a final flush to Datadog. (In a function that must deliver before returning, call
# tracer.flush() and then handle.flush() instead.)
