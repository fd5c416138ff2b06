"""A serverless function handler (AWS Lambda style) that sends metrics with the real `datadog`
DogStatsD client to the embedded DogStatsD server, and flushes before it returns.

The services start once per cold start, at import, and keep running between invocations. The
platform may freeze the process as soon as the handler returns, so the handler flushes first:
`flush()` returns once the Datadog intake has answered. When the process finally ends, the
atexit hook stops the services with a last flush.

Configured by the usual DD_* variables (DD_API_KEY, DD_SITE, ...; without DD_API_KEY each payload
is printed as JSON instead of sent). Run locally: python examples/python/handler.py
"""

import time

from datadog.dogstatsd import DogStatsd

from datadog_serverless import ServerlessServices, ServicesConfig

# Cold start: bind the sockets and start the background thread (well under 10 ms).
services = ServerlessServices(ServicesConfig.from_env()).start()
statsd = DogStatsd(host="127.0.0.1", port=services.ports.dogstatsd)


def handler(event, context):
    started = time.perf_counter()
    channel = event.get("channel", "web")
    statsd.increment("orders.received", tags=[f"channel:{channel}"])
    total = sum(item["price"] * item["quantity"] for item in event.get("items", []))
    statsd.distribution("orders.total", total, tags=[f"channel:{channel}"])
    statsd.timing("orders.handler_ms", (time.perf_counter() - started) * 1000)
    # Before returning: send what was aggregated and wait for the intake (2 s at most).
    services.flush(timeout=2.0)
    return {"statusCode": 200, "body": f"{len(event.get('items', []))} items, total {total}"}


if __name__ == "__main__":
    for channel in ("web", "mobile"):
        print(handler({"channel": channel, "items": [{"price": 12.5, "quantity": 2}]}, None))
