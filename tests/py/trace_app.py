"""A small application traced by the real `ddtrace`, run as a child process by the end-to-end
tests. Prints the ids of the spans it made as one JSON line, then shuts the tracer down (which
flushes). Configured only through DD_* variables, as a user's function would be."""
import json
import sys
import time

from ddtrace import tracer

MASK = (1 << 64) - 1
spans = {}
# --linger N: keep making traces for N seconds (the tracer learns from /info whether to compute
# stats, and flushes stats buckets on its own interval).
linger = float(sys.argv[sys.argv.index("--linger") + 1]) if "--linger" in sys.argv else 0.0
deadline = time.monotonic() + linger
while time.monotonic() < deadline:
    with tracer.trace("warmup.request", service="e2e-web", resource="GET /health"):
        pass
    time.sleep(0.1)
with tracer.trace("web.request", service="e2e-web", resource="GET /checkout", span_type="web") as root:
    root.set_tag("http.url", "http://shop.local/checkout?card=4111111111111111&step=2")
    root.set_tag("http.status_code", "200")
    root.set_tag("customer.tier", "gold")
    root.set_tag("payment.card", "4111-1111-1111-1111")  # a Luhn-valid test card number
    root.set_metric("cart.items", 3)
    spans["root"] = root
    with tracer.trace("db.query", service="e2e-db", resource="SELECT * FROM carts", span_type="sql") as db:
        db.set_tag("db.system", "postgresql")
        spans["db"] = db
        with tracer.trace("db.fetch") as fetch:
            fetch.set_metric("rows", 42)
            spans["fetch"] = fetch
    try:
        with tracer.trace("payment.charge", service="e2e-web") as pay:
            spans["pay"] = pay
            if "--client-kind" in sys.argv:  # eligible for agent-computed stats by its kind
                pay.set_tag("span.kind", "client")
            raise ValueError("card declined")
    except ValueError:
        pass

out = {k: {"trace_id": s.trace_id & MASK, "span_id": s.span_id, "parent_id": s.parent_id or 0} for k, s in spans.items()}
print(json.dumps(out), flush=True)
if "--no-shutdown" in sys.argv:
    sys.exit(0)
if linger:
    time.sleep(linger)
tracer.shutdown()
